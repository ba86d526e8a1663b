"""The `--dtype` cast (converter/write/dtypes.py) against torch's own, bit for bit, on the values
where a cast goes wrong: ties (round half to even, not away and not truncated), the largest
finite values and just beyond, subnormals, signed zeros, infinities and NaN; and what the writer
says when float16's range is exceeded. Real weights are covered by tests/test_dtype.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from converter.errors import UsageError
from converter.readers.base import Source, SourceTensor
from converter.write.dtypes import OUTPUT_DTYPES, output_dtype


def _awkward_float32() -> np.ndarray:
    bits = np.array(
        [
            0x3F808000,  # 1 + 2^-8: a bfloat16 tie between 1.0 (even) and 1 + 2^-7
            0x3F818000,  # 1 + 3·2^-8: a tie whose even neighbour is above
            0x3F808001,  # just above a tie
            0x3F801000,  # 1 + 2^-11: a float16 tie
            0x3F803000,  # 1 + 3·2^-11
            0x7F7FFFFF,  # the largest float32: beyond bfloat16's finite range once rounded
            0x477FEFFF,  # just below float16's largest + half an ulp (65519.996)
            0x477FF000,  # 65520: rounds to float16 infinity
            0x00000001,  # the smallest float32 subnormal
            0x33800000,  # 2^-24: the smallest float16 subnormal
            0x33000000,  # 2^-25: a tie between 0 and 2^-24
            0x80000000,  # -0.0
            0x7F800000,  # inf
            0xFF800000,  # -inf
            0x7FC00000,  # NaN
            0xFFC00001,  # a negative NaN with a payload
        ],
        dtype=np.uint32,
    ).view(np.float32)
    rng = np.random.default_rng(0)
    return np.concatenate([bits, rng.standard_normal(100_000).astype(np.float32) * 50])


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_the_cast_is_torchs_round_to_nearest_even_bit_for_bit(name):
    values = _awkward_float32()
    ours = OUTPUT_DTYPES[name].cast(values).view(np.uint16)
    theirs = torch.from_numpy(values).to(getattr(torch, name)).view(torch.int16).numpy()
    np.testing.assert_array_equal(ours, theirs.view(np.uint16))


def test_bfloat16_ties_go_to_even_where_truncation_would_not():
    ties = np.array([0x3F808000, 0x3F818000], dtype=np.uint32).view(np.float32)
    rounded = OUTPUT_DTYPES["bfloat16"].cast(ties)
    assert rounded.tolist() == [0x3F80, 0x3F82]  # down to even, up to even
    assert (ties.view(np.uint32) >> 16).tolist() == [0x3F80, 0x3F81]  # what truncation gives


def test_a_bfloat16_source_widens_exactly_and_casts_to_float16_as_torch_does():
    import ml_dtypes

    values = _awkward_float32().astype(ml_dtypes.bfloat16)
    widened = OUTPUT_DTYPES["float32"].cast(values)
    np.testing.assert_array_equal(widened, values.astype(np.float32))
    half = OUTPUT_DTYPES["float16"].cast(values).view(np.uint16)
    bf16 = torch.from_numpy(values.view(np.uint16).astype(np.int16)).view(torch.bfloat16)
    expected = bf16.to(torch.float16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(half, expected)


def test_values_beyond_float16s_range_are_written_as_inf_and_reported():
    from converter.plan.accounting import plan_head
    from converter.tables import parse_table
    from converter.write.tensor_jobs import mapped_jobs

    weights = np.array([1.0, 7e4, -1e5], dtype=np.float32)
    source = Source(
        Path("synthetic"),
        "synthetic",
        {},
        None,
        [SourceTensor("w", (3,), weights.dtype, lambda index: weights)],
        [],
    )
    table = parse_table(
        "one",
        {
            "schema": 1,
            "architecture": "one",
            "layout": "synthetic",
            "model_type": "one",
            "class_prefix": "One",
            "base_model_prefix": "one",
            "groups": {"g": {"parameter": [{"src": "w", "dst": "one.w", "shape": [3]}]}},
            "heads": {"base-model": {"class": "Model", "groups": ["g"]}},
        },
    )
    plan = plan_head(source, table, "base-model", {})
    warnings: list[str] = []
    (job,) = mapped_jobs(source, plan, warnings, output_dtype("float16"))
    written = np.concatenate(list(job.produce()))
    assert written.dtype == np.float16 and written.tolist() == [1.0, np.inf, -np.inf]
    assert warnings == ["w: 2 value(s) beyond float16's range, written as ±inf"]


def test_an_unknown_dtype_is_a_usage_error_naming_the_choices():
    with pytest.raises(UsageError, match="float32, float16, bfloat16"):
        output_dtype("float8")
