"""The PyTorch side of a diagnosis (converter/verify/trials.py) on every architecture's models:
the layer hooks see exactly the hidden states each model returns, layer calls served from a
run's outputs change nothing, and a trial's change is undone afterwards. Tiny random models
prove these mechanisms; real weights prove the diagnosis (tests/test_diagnosis.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converter.plan.accounting import plan_head
from converter.tables import load_table
from converter.tables.hypotheses import load_hypotheses
from converter.tables.reference import feeds
from converter.verify.diagnosis import layer_modules
from converter.verify.inputs import make_inputs
from converter.verify.runners import ordered_outputs
from converter.verify.trials import (
    Trial,
    TrialRequest,
    apply_op,
    check_shortcuts,
    rebuilt,
    run_trials,
)
from tests.fast.synthetic import DIMS, listing_for, source_of
from tests.golden.expand import GOLDEN

GOLDEN_TABLES = json.loads(GOLDEN.read_text())
CASES = {  # table, head: every family, a shared-layer one, a two-model one, choice-shaped input
    "bert": ("bert-hf-keras", "masked-lm"),
    "roberta multiple choice": ("roberta-hf-keras", "multiple-choice"),
    "electra": ("electra-hf-keras", "base-model"),
    "albert, layer groups shared": ("albert-hf-keras", "base-model"),
    "distilbert": ("distilbert-hf-keras", "sequence-classification"),
}
CONFIG_KEYS = {  # the transformers config of the synthetic dims, per architecture
    "distilbert": dict(dim=8, hidden_dim=12, n_layers=2, n_heads=2, vocab_size=50),
    "albert": dict(num_hidden_groups=1, inner_group_num=1, embedding_size=6),
}


def _model(table_name: str, head: str):
    """A seeded random model of the head's class, with the table's plan and parity batches."""
    import torch
    import transformers

    golden = GOLDEN_TABLES[table_name]
    table = load_table(table_name)
    dims = dict(DIMS)
    arch = table.architecture
    if arch == "albert":
        dims.update(num_hidden_groups=1, inner_group_num=1)
    listing = listing_for(golden["heads"][head], dims, golden["placeholders"])
    plan = plan_head(source_of(listing), table, head, dims)
    config_cls = transformers.AutoConfig.for_model(table.model_type).__class__
    known = config_cls().to_dict()
    settings = {k: v for k, v in dims.items() if k in known} | CONFIG_KEYS.get(arch, {})
    config = config_cls(**settings, num_labels=3)
    torch.manual_seed(0)
    model = getattr(transformers, plan.class_name)(config).eval()
    with torch.no_grad():  # weights large enough that any change shows
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.5)
    fed = "token_type_ids" in feeds(table.reference).values()
    inputs = make_inputs(dims, table.position_offset, plan.input_shape, token_types=fed)
    return plan, model, inputs


@pytest.mark.parametrize("case", list(CASES))
def test_hooks_see_every_hidden_state_and_skipped_layers_change_nothing(case):
    plan, model, inputs = _model(*CASES[case])
    layers = layer_modules(plan, load_hypotheses())
    shortcuts = check_shortcuts(model, inputs.batches[-1], layers)
    assert shortcuts.watch and shortcuts.skip, (layers, shortcuts)


@pytest.mark.parametrize("case", list(CASES))
def test_a_trial_stops_at_the_first_output_beyond_tolerance_and_leaves_the_model_unchanged(case):
    import torch

    plan, model, inputs = _model(*CASES[case])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    baseline = []
    for batch in inputs.batches:
        feed = {k: torch.from_numpy(v.astype(np.int64)) for k, v in batch.as_dict().items()}
        with torch.no_grad():
            result = model(**feed, output_hidden_states=True, return_dict=True)
        baseline.append(ordered_outputs(result, lambda t: t.numpy()))
    names = [n for n in baseline[0] if n.startswith("hidden_states")]
    tolerances = {n: 1e-5 for n in baseline[0]}
    square = next(
        n
        for n, p in model.named_parameters()
        if p.ndim == 2 and p.shape[0] == p.shape[1] and (".0." in n)
    )
    trials = [
        Trial(),  # no change: the model against its own outputs passes everything
        Trial(op="transpose", tensors=(square,)),
        Trial(config=(("layer_norm_eps", 0.5),) if hasattr(model.config, "layer_norm_eps") else ()),
    ]
    request = TrialRequest(trials, baseline, tolerances, layer_modules(plan, load_hypotheses()))
    same, transposed, eps = run_trials(model, inputs.batches, baseline, request)
    assert same.stopped_at is None and not same.error
    assert set(same.max_abs) == set(tolerances) and max(same.max_abs.values()) <= 1e-5
    assert transposed.stopped_at in names[1:2] and not transposed.error  # layer 0's output
    if trials[2].config:
        assert eps.stopped_at == names[0]  # the embeddings' layer norm
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_ops_do_what_the_hypotheses_file_says_and_each_has_an_inverse():
    import torch

    rows, heads = 12, 3  # head_dim 4
    w = torch.arange(rows * 2, dtype=torch.float32).reshape(rows, 2)
    original = w.clone()
    apply_op("permute_heads", [w], heads)  # rows read as [heads, head_dim] → [head_dim, heads]
    expected = original.numpy().reshape(heads, 4, 2).transpose(1, 0, 2).reshape(rows, 2)
    np.testing.assert_array_equal(w.numpy(), expected)
    apply_op("unpermute_heads", [w], heads)
    assert torch.equal(w, original)
    a, b = torch.ones(2, 2), torch.zeros(2, 2)
    apply_op("swap", [a, b], 0)
    assert a.sum() == 0 and b.sum() == 4
    t = torch.arange(4.0).reshape(2, 2)
    apply_op("transpose", [t], 0)
    assert t.tolist() == [[0.0, 2.0], [1.0, 3.0]]
    ops = set(load_hypotheses().ops)
    assert ops <= {"transpose", "swap", "permute_heads", "unpermute_heads", "zero"}


def test_a_config_change_rebuilds_the_model_around_the_very_same_tensors():
    plan, model, _ = _model("bert-hf-keras", "masked-lm")
    fresh = rebuilt(model, {"hidden_act": "gelu_new"})
    assert fresh.config.hidden_act == "gelu_new" and model.config.hidden_act != "gelu_new"
    mine = dict(model.named_parameters(remove_duplicate=False))
    for name, p in fresh.named_parameters(remove_duplicate=False):
        assert p is mine[name], name
    for name, b in fresh.named_buffers():
        assert b.device.type == "cpu", name
