"""Which outputs are compared per token: a per-row output whose size happens to equal one
batch's width (3 labels, a 3-token batch) must not be masked as if it were per token."""

from __future__ import annotations

import numpy as np

from converter.verify.compare import compare_outputs
from converter.verify.gate import Gate


def _run(rows: int, width: int, real: list[int], labels: int, seed: int):
    rng = np.random.default_rng(seed)
    mask = np.zeros((rows, width), dtype=bool)
    for i, n in enumerate(real):
        mask[i, :n] = True
    hidden = rng.normal(size=(rows, width, 4)).astype(np.float32)
    logits = rng.normal(size=(rows, labels)).astype(np.float32)
    outputs = {"hidden_states[0]": hidden, "logits": logits}
    exact = {k: v.astype(np.float64) for k, v in outputs.items()}
    return outputs, outputs, exact, mask


def test_a_per_row_output_as_wide_as_a_batch_is_compared_per_row():
    runs = [_run(1, 8, [8], 3, 0), _run(1, 3, [3], 3, 1)]  # the second batch is 3 tokens wide
    diffs = {d.name: d for d in compare_outputs(runs, Gate())}
    assert diffs["logits"].passed and diffs["logits"].argmax_agreement == 1.0
    assert diffs["hidden_states[0]"].passed


def test_padding_positions_of_per_token_outputs_are_left_out():
    runs = [_run(2, 6, [6, 2], 3, 0), _run(1, 3, [3], 3, 1)]
    reference, candidate, exact, mask = runs[0]
    candidate = dict(candidate, **{"hidden_states[0]": candidate["hidden_states[0]"].copy()})
    candidate["hidden_states[0]"][1, 4] += 100.0  # a padding position of row 1
    diffs = {
        d.name: d for d in compare_outputs([(reference, candidate, exact, mask), runs[1]], Gate())
    }
    assert diffs["hidden_states[0]"].max_abs_diff == 0.0
