"""What a conversion assumes and what the user declares, without frameworks: the patch ops and
their inverses, --set and --patch parsing and checking, the assumption records, and the tables'
reasons for every value they supply."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from converter.errors import UsageError
from converter.provenance import (
    Assumption,
    Kind,
    check_settings,
    parse_patch,
    parse_settings,
    patch_jobs,
    resolve_patches,
)
from converter.provenance.assumptions import assumption_lines, markdown_section
from converter.provenance.patches import (
    NotInvertible,
    PermuteHeads,
    Swap,
    Transpose,
    UnpermuteHeads,
    Zero,
    apply_patches,
)
from converter.tables import load_table, table_names

RNG = np.random.default_rng(0)


# --- the ops and their inverses ---


@pytest.mark.parametrize(
    "op,shapes",
    [
        (Transpose(), [(6, 6)]),
        (Swap(), [(4, 3), (4, 3)]),
        (PermuteHeads(3), [(6, 5)]),
        (PermuteHeads(3), [(6,)]),
        (PermuteHeads(12), [(384, 384)]),
        (UnpermuteHeads(3), [(6, 5)]),
        (UnpermuteHeads(12), [(384, 384)]),
    ],
)
def test_each_op_changes_its_tensors_and_its_inverse_restores_them(op, shapes):
    arrays = [RNG.normal(size=s).astype(np.float32) for s in shapes]
    changed = op.apply(arrays)
    assert any(not np.array_equal(a, c) for a, c in zip(arrays, changed, strict=True))
    back = op.inverse(shapes).apply(changed)
    for a, b in zip(arrays, back, strict=True):
        np.testing.assert_array_equal(a, b)


def test_permute_heads_moves_row_h_times_head_dim_plus_d_to_d_times_heads_plus_h():
    """3 heads of 2 rows: rows (h0d0 h0d1 h1d0 h1d1 h2d0 h2d1) become (h0d0 h1d0 h2d0 h0d1 h1d1
    h2d1), the [heads, head_dim] split read as [head_dim, heads]."""
    rows = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    (out,) = PermuteHeads(3).apply([rows])
    assert out[:, 0].tolist() == [0, 2, 4, 1, 3, 5]
    assert PermuteHeads(3).inverse([(6, 2)]) == UnpermuteHeads(3)
    # unpermute_heads reads the rows as [head_dim, heads]: the same as permuting 2 "heads"
    (back,) = UnpermuteHeads(3).apply([out])
    assert back[:, 0].tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(
        UnpermuteHeads(3).apply([rows])[0], PermuteHeads(2).apply([rows])[0]
    )


def test_zero_empties_a_bias_and_has_no_inverse():
    bias = RNG.normal(size=7).astype(np.float32)
    (out,) = Zero().apply([bias])
    assert not out.any() and out.dtype == bias.dtype
    with pytest.raises(NotInvertible):
        Zero().inverse([(7,)])


# --- --patch: parsed, checked against what the conversion writes, applied in order ---

SHAPES = {
    "encoder.layer.0.attention.self.query.weight": (12, 12),
    "encoder.layer.0.attention.self.key.weight": (12, 12),
    "encoder.layer.0.attention.self.query.bias": (12,),
    "encoder.layer.0.intermediate.dense.weight": (20, 12),
}
TIED = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}
DIMS = {"num_attention_heads": 3}
Q, K, QB, FF = SHAPES


def _resolve(*texts: str, dims=DIMS):
    return resolve_patches(
        tuple(parse_patch(t) for t in texts), SHAPES, TIED, dims, "num_attention_heads"
    )


def test_patches_resolve_to_one_step_per_tensor_and_one_per_swap():
    steps = _resolve(f"transpose={Q},{K}", f"swap={Q},{K}", f"permute_heads={Q},{QB}", f"zero={QB}")
    assert [(type(op).__name__, names) for op, names in steps] == [
        ("Transpose", (Q,)),
        ("Transpose", (K,)),
        ("Swap", (Q, K)),
        ("PermuteHeads", (Q,)),
        ("PermuteHeads", (QB,)),
        ("Zero", (QB,)),
    ]
    assert steps[3][0] == PermuteHeads(3)  # the config's head count


@pytest.mark.parametrize(
    "text,message",
    [
        ("transpose", "cannot read --patch 'transpose'"),
        ("transpose=", "cannot read --patch 'transpose='"),
        ("transpsoe=a", "unknown op 'transpsoe' — did you mean transpose?"),
        ("swap=a", "swap takes exactly two tensors of one shape"),
        ("swap=a,b,c", "swap takes exactly two tensors of one shape"),
    ],
)
def test_an_unreadable_patch_is_a_one_line_usage_error(text, message):
    with pytest.raises(UsageError) as err:
        parse_patch(text)
    assert message in err.value.one_line() and err.value.exit_code == 2


@pytest.mark.parametrize(
    "text,message",
    [
        (f"transpose={FF}", f"{FF} [20, 12]: not a square weight"),
        (f"swap={Q},{QB}", "the two tensors differ in shape"),
        (f"zero={Q}", "not a bias (a 1-D tensor)"),
        (
            "transpose=encoder.layer.0.attention.self.qurey.weight",
            f"writes no parameter encoder.layer.0.attention.self.qurey.weight — did you mean {Q}?",
        ),
        (
            "transpose=cls.predictions.decoder.weight",
            "is tied to bert.embeddings.word_embeddings.weight (one tensor, written once) — "
            "patch bert.embeddings.word_embeddings.weight",
        ),
    ],
)
def test_a_patch_that_does_not_fit_the_written_tensors_names_the_tensor(text, message):
    with pytest.raises(UsageError) as err:
        _resolve(text)
    assert message in err.value.one_line()


def test_permute_heads_needs_a_head_count_that_divides_the_rows():
    with pytest.raises(UsageError, match="no head count .num_attention_heads. — add --set"):
        _resolve(f"permute_heads={Q}", dims={})
    with pytest.raises(UsageError, match="12 output rows do not split into 5 heads"):
        _resolve(f"permute_heads={Q}", dims={"num_attention_heads": 5})


@dataclass(frozen=True)
class Job:  # the writer's TensorJob, as patch_jobs sees it
    name: str
    dtype: np.dtype
    produce: object


def _jobs(arrays: dict[str, np.ndarray], reads: dict[str, int]) -> list[Job]:
    def producer(name):
        def produce():
            reads[name] = reads.get(name, 0) + 1
            a = arrays[name]
            return iter([a[: len(a) // 2], a[len(a) // 2 :]])  # streamed in two row blocks

        return produce

    return [Job(n, a.dtype, producer(n)) for n, a in arrays.items()]


def test_patched_jobs_apply_the_steps_in_order_and_read_each_tensor_once():
    arrays = {n: RNG.normal(size=s).astype(np.float32) for n, s in SHAPES.items()}
    steps = _resolve(f"swap={Q},{K}", f"transpose={Q}", f"zero={QB}")
    reads: dict[str, int] = {}
    written = {
        j.name: np.concatenate(list(j.produce())) for j in patch_jobs(_jobs(arrays, reads), steps)
    }
    np.testing.assert_array_equal(written[Q], arrays[K].T)  # swapped, then transposed
    np.testing.assert_array_equal(written[K], arrays[Q])
    assert not written[QB].any()
    np.testing.assert_array_equal(written[FF], arrays[FF])  # untouched, still streamed
    assert reads == {Q: 1, K: 1, QB: 1, FF: 1}
    expected = apply_patches(arrays, steps)  # the same steps on whole arrays
    for name, value in expected.items():
        np.testing.assert_array_equal(written[name], value)


# --- --set: parsed as JSON else text, refused where nothing would read it ---


def test_settings_are_read_as_json_else_as_text():
    assert parse_settings(("a=12", "b=1e-5", "c=true", "d=gelu_new", "e=")) == {
        "a": 12,
        "b": 1e-5,
        "c": True,
        "d": "gelu_new",
        "e": "",
    }
    with pytest.raises(UsageError, match="cannot read --set 'hidden_act'"):
        parse_settings(("hidden_act",))


KNOWN = {"hidden_act": "gelu", "layer_norm_eps": 1e-12, "num_attention_heads": 12, "x": None}


@pytest.mark.parametrize(
    "settings,message",
    [
        (
            {"hiden_act": "gelu"},
            "--set hiden_act: not a key of this model's config — did you mean hidden_act?",
        ),
        ({"layer_norm_eps": "small"}, '--set layer_norm_eps="small": expected a number'),
        ({"num_attention_heads": True}, "--set num_attention_heads=true: expected a number"),
        ({"hidden_act": 3}, "--set hidden_act=3: expected text"),
        (
            {"model_type": "roberta"},
            "--set model_type: decided by the mapping table and head — use --arch",
        ),
        ({"architectures": ["X"]}, "use --head"),
        ({"num_labels": 3}, "use --num-labels"),
    ],
)
def test_a_setting_nothing_would_read_is_refused(settings, message):
    with pytest.raises(UsageError) as err:
        check_settings(settings, KNOWN)
    assert message in err.value.one_line()


def test_a_new_key_and_a_value_of_the_known_kind_are_accepted():
    check_settings({"layer_norm_eps": 1e-5, "num_attention_heads": 6, "x": "y"}, KNOWN)
    check_settings({"position_embedding_type": "relative_key"}, KNOWN)  # not near any key


# --- the records ---


def test_each_assumption_is_one_line_saying_where_the_value_came_from_and_why():
    entries = [
        Assumption("hidden_act", "gelu_new", Kind.TRANSLATED, "its gelu is the tanh form", "gelu"),
        Assumption("layer_norm_eps", 1e-12, Kind.DEFAULT, "fixed by its code"),
        Assumption("num_attention_heads", 6, Kind.GUESSED, "hidden_size // 64"),
        Assumption("hidden_act", "gelu", Kind.USER, "with --set"),
    ]
    dicts = [a.to_dict() for a in entries]
    assert [Assumption.from_dict(d) for d in dicts] == entries
    patch = parse_patch("zero=a.bias").to_dict()
    assert assumption_lines(dicts, [patch]) == [
        "assumed hidden_act=gelu_new (translated from gelu: its gelu is the tanh form)",
        "assumed layer_norm_eps=1e-12 (default: fixed by its code)",
        "assumed num_attention_heads=6 (guessed: hidden_size // 64)",
        "declared hidden_act=gelu (with --set)",
        f"declared patch zero=a.bias ({patch['reason']})",
    ]
    assert markdown_section([], []) == []
    assert markdown_section(dicts, [])[0] == "## Assumed and declared"


# --- the tables say why for every value they supply ---


@pytest.mark.parametrize("name", table_names())
def test_every_default_translation_and_guess_a_table_supplies_has_a_reason(name):
    table = load_table(name)
    assert set(table.config_reasons) == set(table.config_defaults), name
    entries = [table.source_config] + [h.source_config for h in table.heads.values()]
    for key, entry in ((k, e) for group in entries for k, e in group.items()):
        if entry.values or entry.add or entry.divide:
            assert entry.why, f"{name}: source_config.{key} translates or guesses with no why"
