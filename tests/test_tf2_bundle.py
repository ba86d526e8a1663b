"""The TensorFlow-free tensor-bundle reader: it sees exactly what `tf.train.load_checkpoint` sees
(names, dtypes, shapes, bytes) on checkpoints and SavedModels written by TF itself, reads row
blocks by offset, checks CRC-32C, refuses what it cannot read in one line, and lets a TF2 source
convert without importing TensorFlow or torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import copy_tree, nothing_written, run_cli
from .test_tf2 import INNER, MG_TINY, _one_line_error
from .test_writer import assert_converts_without_frameworks


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """Bundle prefixes written by TF: a Model Garden encoder alone and with Keras Adam state,
    variables with TF's own optimizer slots, and a SavedModel holding every common dtype."""
    import tensorflow as tf
    from official.nlp.modeling import networks

    root = tmp_path_factory.mktemp("bundles")
    rng = np.random.default_rng(11)
    encoder = networks.BertEncoderV2(inner_dim=INNER, **MG_TINY)
    ids = tf.ones((1, 3), tf.int32)
    encoder(dict(input_word_ids=ids, input_mask=ids, input_type_ids=ids * 0))
    for w in encoder.weights:
        w.assign(rng.normal(0.0, 0.1, size=tuple(w.shape)).astype(np.float32))
    bare = tf.train.Checkpoint(encoder=encoder).save(str(root / "mg-bare" / "ckpt"))
    optimizer = tf.keras.optimizers.Adam()
    optimizer.build(encoder.trainable_variables)
    for v in optimizer.variables:
        dtype = np.dtype(getattr(v.dtype, "as_numpy_dtype", v.dtype))  # Keras 3 or tf-keras
        v.assign(rng.normal(0.0, 0.1, size=tuple(v.shape)).astype(dtype))
    prefix = tf.train.Checkpoint(encoder=encoder, optimizer=optimizer).save(
        str(root / "mg" / "ckpt")
    )

    # TF's own slot mechanism: the object graph's `slot_variables` (Keras 3 keeps plain lists).
    layer = tf.Module()
    layer.kernel = tf.Variable(rng.normal(size=(3, 2)).astype(np.float32))
    layer.bias = tf.Variable(np.zeros(2, np.float32))
    slotted = tf.compat.v1.train.AdamOptimizer()
    slotted.apply_gradients([(tf.ones_like(v), v) for v in (layer.kernel, layer.bias)])
    slots = tf.train.Checkpoint(layer=layer, optimizer=slotted).save(str(root / "slots" / "ckpt"))

    module = tf.Module()
    module.matrix = tf.Variable(rng.normal(size=(7, 5)).astype(np.float32))
    module.wide = tf.Variable(rng.normal(size=(3, 2)).astype(np.float64))
    module.half = tf.Variable(rng.normal(size=(4,)).astype(np.float16))
    module.count = tf.Variable(np.int64(-3))
    module.ids = tf.Variable(np.arange(6, dtype=np.int32).reshape(2, 3))
    module.flags = tf.Variable([True, False, True])
    module.words = tf.Variable([b"a", b"", b"tail\0\0"])
    module.empty = tf.Variable(np.zeros((0, 4), np.float32))
    tf.saved_model.save(module, str(root / "module"))
    return {
        "model-garden": Path(bare),
        "model-garden-with-adam": Path(prefix),
        "slot-variables": Path(slots),
        "saved-model-dtypes": root / "module" / "variables" / "variables",
    }


def _ours(prefix: Path):
    from converter.readers.bundle import Bundle
    from converter.readers.checkpoint_files import data_shards

    return Bundle(prefix, data_shards(prefix))


@pytest.mark.parametrize("kind", ["model-garden-with-adam", "slot-variables", "saved-model-dtypes"])
def test_bundle_reader_sees_what_tensorflow_sees(bundles, kind):
    import tensorflow as tf

    reference = tf.train.load_checkpoint(str(bundles[kind]))
    shapes = reference.get_variable_to_shape_map()
    dtypes = reference.get_variable_to_dtype_map()
    ours = _ours(bundles[kind])
    assert sorted(ours.entries) == sorted(shapes)
    assert any("OPTIMIZER_SLOT" in k for k in shapes) == (kind == "slot-variables")
    optimizer_state = sum(k.startswith("optimizer/") for k in shapes)
    assert (optimizer_state > 40) == (kind == "model-garden-with-adam"), optimizer_state
    for name, entry in ours.entries.items():
        assert entry.shape == tuple(shapes[name]), name
        assert entry.dtype == np.dtype(dtypes[name].as_numpy_dtype), name
        expected, got = reference.get_tensor(name), ours.read(name)
        if entry.is_string:  # as the TF-based reader gave it: np.asarray of TF's value
            expected = np.asarray(expected)
            assert got.dtype == expected.dtype and got.shape == expected.shape, name
            assert got.tolist() == expected.tolist(), name
        else:
            assert got.dtype == expected.dtype and got.shape == expected.shape, name
            assert got.tobytes() == np.ascontiguousarray(expected).tobytes(), name
    graph = ours.scalar_bytes("_CHECKPOINTABLE_OBJECT_GRAPH")
    assert graph == reference.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")  # trailing bytes kept


def test_row_blocks_are_read_by_offset_and_equal_the_whole(bundles):
    ours = _ours(bundles["saved-model-dtypes"])
    name = next(n for n, e in ours.entries.items() if e.shape == (7, 5))
    whole = ours.read(name)
    blocks = [ours.read(name, (slice(a, min(a + 3, 7)), slice(None))) for a in range(0, 7, 3)]
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    np.testing.assert_array_equal(ours.read(name, (slice(None), slice(1, 3))), whole[:, 1:3])


def test_tf2_names_and_shapes_match_the_tensorflow_based_listing(bundles):
    """Object-graph paths decoded without TF equal those decoded by TF's own proto class."""
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    from converter.readers import object_graph, open_source

    for kind in ("model-garden-with-adam", "slot-variables", "saved-model-dtypes"):
        reader = tf.train.load_checkpoint(str(bundles[kind]))
        serialized = reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
        theirs = trackable_object_graph_pb2.TrackableObjectGraph()
        theirs.ParseFromString(serialized)
        ours = object_graph.tensors(object_graph.parse(serialized))
        assert sorted(object_graph.tensors(theirs), key=str) == sorted(ours, key=str), kind
    names = {t.name for t in open_source(bundles["model-garden"].parent).tensors}
    assert "encoder/_transformer_layers/1/_attention_layer/_query_dense/kernel" in names
    slots = {t.name for t in open_source(bundles["slot-variables"].parent).tensors}
    assert {
        "layer/kernel/.OPTIMIZER_SLOT/m",
        "layer/bias/.OPTIMIZER_SLOT/v",
    } <= slots


def test_flipped_tensor_byte_fails_its_crc_naming_tensor_and_file(bundles, tmp_path):
    prefix = bundles["model-garden"]
    src = copy_tree(prefix.parent, tmp_path / "src")
    model_tensors = {
        k: e
        for k, e in _ours(prefix).entries.items()
        if k.startswith("encoder/") and "SLOT" not in k
    }
    entry_name, entry = max(model_tensors.items(), key=lambda kv: kv[1].size)
    data = src / f"{prefix.name}.data-00000-of-00001"
    damaged = bytearray(data.read_bytes())
    damaged[entry.offset + entry.size // 2] ^= 0x10
    data.write_bytes(bytes(damaged))
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out), "--no-verify"])
    line = _one_line_error(err)
    assert code == 2 and "CRC-32C" in line and data.name in line, line
    assert nothing_written(out)
    with pytest.raises(Exception, match="CRC-32C") as caught:
        _ours(src / prefix.name).read(entry_name)
    assert entry_name in str(caught.value)


def test_compressed_index_block_is_refused_in_one_line(bundles, tmp_path):
    prefix = bundles["saved-model-dtypes"]
    src = copy_tree(prefix.parent.parent, tmp_path / "sm")
    index = src / "variables" / "variables.index"
    table = bytearray(index.read_bytes())
    # The footer's first handle is the metaindex; the second the index block, whose first
    # entry points at the first data block: mark that block's trailer as snappy-compressed.
    from converter.readers import bundle, wire

    footer = bytes(table[-bundle.FOOTER_BYTES :])
    _, _, pos = bundle._block_handle(footer)
    offset, size, _ = bundle._block_handle(footer, pos)
    first = bundle._block_entries(memoryview(bytes(table[offset : offset + size])))[0][1]
    data_offset, data_size, _ = bundle._block_handle(first)
    assert wire.varint(first, 0)[0] == data_offset
    table[data_offset + data_size] = 1
    index.write_bytes(bytes(table))
    code, _, err = run_cli(["inspect", str(src)])
    assert code == 2 and "index is compressed (block type 1)" in _one_line_error(err)


def test_crc32c_matches_the_standard_check_value_at_every_size():
    from converter.readers import crc32c

    assert crc32c.value(b"123456789") == 0xE3069283  # RFC 3720's CRC-32C check value
    rng = np.random.default_rng(3)
    for size in (0, 1, 4095, 4096, 70_001, 1 << 20):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        whole = crc32c.value(data)
        assert whole == crc32c._extend_small(0xFFFFFFFF, data) ^ 0xFFFFFFFF, size
        assert crc32c.extend(crc32c.value(data[: size // 3]), data[size // 3 :]) == whole
    assert crc32c.unmask(crc32c.mask(0x12345678)) == 0x12345678


def test_converting_a_tf2_source_imports_neither_tensorflow_nor_torch(bundles, tmp_path):
    assert_converts_without_frameworks(bundles["model-garden"].parent, tmp_path / "out")


def test_partitioned_variables_and_unread_dtypes_are_refused_not_called_damage():
    from converter.readers import bundle

    # BundleEntryProto bytes by its field numbers: dtype (1) = DT_FLOAT, slices (7) = one empty.
    with pytest.raises(bundle.Unsupported, match="partitioned"):
        bundle._entry(b"\x08\x01\x3a\x00")
    with pytest.raises(bundle.Unsupported, match="DataType 8"):  # DT_COMPLEX64
        bundle._entry(b"\x08\x08")
    with pytest.raises(bundle.Unsupported, match="big-endian"):
        bundle._num_shards(b"\x08\x01\x10\x01")  # num_shards 1, endianness BIG
    entry = bundle._entry(b"\x08\x01\x12\x08\x12\x02\x08\x03\x12\x02\x08\x02\x28\x18")
    assert (entry.dtype, entry.shape, entry.size) == (np.dtype("<f4"), (3, 2), 24)
