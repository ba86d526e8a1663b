"""The known causes a failed parity check tries (mappings/shared/hypotheses.yaml), made concrete
for every shipped table on synthetic listings, and judged — no frameworks, no files.

Whether a hypothesis really explains a real failure is proved on trained weights in
tests/test_diagnosis.py; here: that every architecture's tensors are found by role, that
nothing is tried that cannot change anything, and that only a complete pass is ever a fix."""

from __future__ import annotations

import json

import pytest

from converter.errors import MappingTableError
from converter.plan.accounting import plan_head
from converter.tables import load_table
from converter.tables.hypotheses import load_hypotheses, parse_hypotheses
from converter.verify.diagnosis import Candidate, judge, layer_modules, propose
from converter.verify.trials import OPS, Trial, TrialOutcome
from tests.fast.synthetic import DIMS, listing_for, source_of
from tests.golden.expand import GOLDEN

GOLDEN_TABLES = json.loads(GOLDEN.read_text())
ENCODERS = {t: sorted(GOLDEN_TABLES[t]["heads"])[0] for t in sorted(GOLDEN_TABLES)}
# Per architecture: the query weight of layer 0 as transformers names it, written here.
QUERY_0 = {
    "distilbert": "transformer.layer.0.attention.q_lin.weight",
    "albert": "encoder.albert_layer_groups.0.albert_layers.0.attention.query.weight",
}
FED = {"input_ids", "attention_mask", "token_type_ids"}


def _plan(table_name: str, head: str):
    golden = GOLDEN_TABLES[table_name]
    listing = listing_for(golden["heads"][head], DIMS, golden["placeholders"])
    return plan_head(source_of(listing), load_table(table_name), head, dict(DIMS))


def _config(plan) -> dict:
    keys = {"hidden_act": "gelu", "activation": "gelu", "layer_norm_eps": 1e-12}
    return {k: v for k, v in keys.items() if k in plan.dims or k == "layer_norm_eps"} | {
        "pad_token_id": 1
    }


@pytest.mark.parametrize("table_name", sorted(ENCODERS))
def test_every_table_finds_its_layers_tensors_by_role(table_name):
    plan = _plan(table_name, ENCODERS[table_name])
    arch = plan.table.architecture
    candidates = propose(plan, _config(plan), "hidden_states[1]", FED, 2)
    changes = [c.change for c in candidates if "tensors" in c.change]
    query = QUERY_0.get(arch, "encoder.layer.0.attention.self.query.weight")
    names = {n for c in changes for n in c["tensors"]}
    assert any(n == query or n.endswith("." + query) for n in names), (arch, sorted(names)[:5])
    for change in changes:  # every named tensor is one the converted model has
        assert set(change["tensors"]) <= set(plan.target_names()), change
        assert change["op"] in OPS
    assert layer_modules(plan, load_hypotheses())  # the hooks know where the layers are


def test_a_first_divergence_at_layer_one_tries_layer_one_only_and_skips_the_layer_before():
    plan = _plan("bert-hf-keras", "base-model")
    candidates = propose(plan, _config(plan), "hidden_states[2]", FED, 2)
    weights = [c for c in candidates if "tensors" in c.change]
    assert weights and all(".layer.1." in n for c in weights for n in c.change["tensors"])
    assert {c.trial.skip for c in weights} == {1}
    assert all("of layer 1" in c.hypothesis for c in weights)


def test_layer_zero_also_tries_every_layer_linked_to_the_layer_zero_trial():
    plan = _plan("roberta-hf-keras", "base-model")
    candidates = propose(plan, _config(plan), "hidden_states[1]", FED, 2)
    for i, c in enumerate(candidates):
        if "in every layer" in c.hypothesis:
            earlier, until = c.trial.same_until
            assert earlier == i - 1 and until == 1
            layer0 = candidates[earlier].change["tensors"]
            assert set(layer0) < set(c.change["tensors"]) and c.trial.skip == 0
            assert {n.replace(".0.", ".1.") for n in layer0} <= set(c.change["tensors"])


def test_config_values_the_model_already_has_or_that_name_the_same_function_are_not_tried():
    plan = _plan("roberta-hf-keras", "base-model")
    config = {"hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-5, "pad_token_id": 1}
    tried = [
        c.change["config"]
        for c in propose(plan, config, "hidden_states[0]", FED, 2)
        if "config" in c.change
    ]
    acts = [t["hidden_act"] for t in tried if "hidden_act" in t]
    assert "gelu" in acts and not {"gelu_new", "gelu_fast", "gelu_pytorch_tanh"} & set(acts)
    assert {"layer_norm_eps": 1e-5} not in tried and {"layer_norm_eps": 1e-12} in tried
    assert {"pad_token_id": 0} in tried  # RoBERTa's positions count from the padding id
    bert = _plan("bert-hf-keras", "base-model")
    tried = [c.change for c in propose(bert, config, "hidden_states[0]", FED, 2)]
    assert not any("pad_token_id" in c.get("config", {}) for c in tried)  # BERT ignores it


def test_distilbert_activation_is_tried_under_its_own_key():
    plan = _plan("distilbert-hf-keras", "base-model")
    config = {"activation": "gelu", "pad_token_id": 0}
    tried = [
        c.change["config"]
        for c in propose(plan, config, "hidden_states[1]", FED, 2)
        if "config" in c.change
    ]
    assert {"activation": "gelu_new"} in tried and not any("hidden_act" in t for t in tried)


def test_unfed_token_types_are_tried_only_when_the_batch_feeds_them():
    plan = _plan("bert-hf-keras", "base-model")
    with_types = propose(plan, _config(plan), "hidden_states[0]", FED, 2)
    without = propose(plan, _config(plan), "hidden_states[0]", FED - {"token_type_ids"}, 2)
    drop = {"inputs": {"drop": ["token_type_ids"]}}
    assert drop in [c.change for c in with_types]
    assert drop not in [c.change for c in without]


def test_head_changes_skip_every_layer_and_commands_name_each_swap_pair():
    plan = _plan("bert-hf-keras", "pretraining")
    head = propose(plan, _config(plan), "prediction_logits", FED, 2)
    weights = [c for c in head if "tensors" in c.change]
    assert weights and {c.trial.skip for c in weights} == {2}
    names = {n for c in weights for n in c.change["tensors"]}
    assert "cls.predictions.transform.dense.weight" in names
    assert not any(".layer." in n for n in names)
    layer = propose(plan, _config(plan), "hidden_states[2]", FED, 2)
    swap = next(c for c in layer if c.change.get("op") == "swap" and len(c.change["tensors"]) == 4)
    q, k, qb, kb = swap.change["tensors"]
    assert swap.options == (f"--patch swap={q},{k}", f"--patch swap={qb},{kb}")


def _candidate(name: str) -> Candidate:
    return Candidate(name, {"config": {"x": name}}, Trial(), (f"--set x={name}",))


TOLERANCES = {"hidden_states[0]": 1.0, "hidden_states[1]": 1.0, "logits": 0.1}


def test_only_a_trial_that_reached_every_output_within_tolerance_passes():
    outcomes = {
        "all within": TrialOutcome(
            {"hidden_states[0]": 0.1, "hidden_states[1]": 0.5, "logits": 0.01}
        ),
        "closer": TrialOutcome({"hidden_states[0]": 0.1, "hidden_states[1]": 0.1, "logits": 0.01}),
        "stopped": TrialOutcome(
            {"hidden_states[0]": 0.1, "hidden_states[1]": 2.0}, "hidden_states[1]"
        ),
        "missing an output": TrialOutcome({"hidden_states[0]": 0.1, "hidden_states[1]": 0.1}),
        "error": TrialOutcome(error="Traceback …"),
        "NaN": TrialOutcome(
            {"hidden_states[0]": float("inf"), "hidden_states[1]": 0.1, "logits": 0.0}
        ),
    }
    ranked = judge([_candidate(n) for n in outcomes], list(outcomes.values()), TOLERANCES)
    assert [d.hypothesis for d in ranked if d.passes] == ["closer", "all within"]
    assert ranked[0].least_margin == pytest.approx(10.0)
    assert ranked[0].command("tf2pt convert S O") == "tf2pt convert S O --set x=closer"
    assert all(d.command("base") is None for d in ranked if not d.passes)
    stopped = next(d for d in ranked if d.hypothesis == "stopped")
    assert stopped.least_margin == pytest.approx(0.5) and stopped.stopped_at == "hidden_states[1]"


def test_a_malformed_hypotheses_file_is_one_error_naming_it(tmp_path):
    path = tmp_path / "hypotheses.yaml"
    path.write_text(
        "schema: 1\nconfig: []\ncommands: {config: x}\nops: {transpose: {does: t}}\n"
        "weights: {layer: [{op: rotate, tensors: [query.weight], says: s}]}\n"
    )
    with pytest.raises(
        MappingTableError, match=r"hypotheses.yaml: weights.layer\[0\]: op 'rotate'"
    ):
        parse_hypotheses(path)
    path.write_text("schema: 1\nconfig: []\ncommands: {config: x}\nops: {}\nweigths: {}\n")
    with pytest.raises(MappingTableError, match="unknown key 'weigths' \\(did you mean 'weights'"):
        parse_hypotheses(path)


def test_without_hidden_states_compared_layer_changes_are_tried_in_every_layer():
    """A reference that returns only the final outputs (a SavedModel's serving signature) does
    not say which layer diverged: table-level layer changes are tried everywhere."""
    plan = _plan("roberta-transformers-saved-model", "sequence-classification")
    candidates = propose(plan, _config(plan), "logits", FED, -1)
    every = [c for c in candidates if "in every layer" in c.hypothesis]
    assert every and all(c.trial.same_until is None and c.trial.skip == 0 for c in every)
    assert not any("of layer" in c.hypothesis for c in candidates)


def test_a_fix_command_replaces_the_users_setting_it_corrects():
    """The user's wrong --set is dropped from the printed fix, not repeated before the right one."""
    from converter.verify.diagnosis import Diagnosis

    base = "tf2pt convert 'my src' out --set hidden_act=gelu_new --set layer_norm_eps=1e-05"
    fix = Diagnosis("h", {}, passes=True, least_margin=3.0, options=("--set hidden_act=gelu",))
    assert fix.command(base) == (
        "tf2pt convert 'my src' out --set layer_norm_eps=1e-05 --set hidden_act=gelu"
    )
    patch = Diagnosis("h", {}, passes=True, least_margin=3.0, options=("--patch zero=a.bias",))
    assert patch.command(base) == f"{base} --patch zero=a.bias"  # nothing it overrides
    failed = Diagnosis("h", {}, passes=False, least_margin=0.5, options=("--set hidden_act=gelu",))
    assert failed.command(base) is None
