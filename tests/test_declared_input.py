"""Bad --set, --config and --patch input: one line naming the problem, exit 2, nothing written —
checked before any tensor is read, whether or not parity would run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import build_tf_roberta, nothing_written, run_cli

QUERY = "encoder.layer.0.attention.self.query.weight"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("declared")
    (root / "list.json").write_text("[1, 2]")
    (root / "broken.json").write_text('{"hidden_act": ')
    return build_tf_roberta(root / "roberta", "RobertaModel")


CASES = {
    "set without =": (["--set", "hidden_act"], "cannot read --set 'hidden_act'"),
    "set typo": (
        ["--set", "hiden_act=gelu"],
        "--set hiden_act: not a key of this model's config — did you mean hidden_act?",
    ),
    "set of another kind": (["--set", "layer_norm_eps=tiny"], "expected a number"),
    "set of the table's key": (["--set", "model_type=bert"], "use --arch"),
    "config missing": (["--config", "{root}/missing.json"], "missing.json: cannot read"),
    "config not JSON": (["--config", "{root}/broken.json"], "broken.json: not valid JSON"),
    "config not an object": (["--config", "{root}/list.json"], "does not hold a JSON object"),
    "patch op unknown": (["--patch", f"flip={QUERY}"], "unknown op 'flip'"),
    "patch tensor unknown": (
        ["--patch", "transpose=encoder.layer.0.attention.self.qeury.weight"],
        f"writes no parameter encoder.layer.0.attention.self.qeury.weight — did you mean {QUERY}?",
    ),
    "patch not square": (
        ["--patch", "transpose=encoder.layer.0.intermediate.dense.weight"],
        "encoder.layer.0.intermediate.dense.weight [37, 32]: not a square weight",
    ),
    "patch swap of one": (["--patch", f"swap={QUERY}"], "swap takes exactly two tensors"),
    "patch heads that do not divide": (
        ["--patch", "permute_heads=pooler.dense.weight", "--set", "num_attention_heads=5"],
        "32 output rows do not split into 5 heads",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("verify", [False, True])
def test_bad_declaration_is_one_line_exit_2_and_nothing_written(source, tmp_path, case, verify):
    extra, message = CASES[case]
    out = tmp_path / "out"
    extra = [a.replace("{root}", str(source.parent)) for a in extra]
    argv = ["convert", str(source), str(out), *extra] + ([] if verify else ["--no-verify"])
    code, _, err = run_cli(argv)
    errors = [line for line in err.splitlines() if line.startswith("tf2pt: error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert message in errors[0], errors[0]
    assert nothing_written(out) and not out.with_name("out.parity-failed").exists()


def test_config_file_of_a_source_that_keeps_its_config_in_its_model_files_is_refused(tmp_path):
    """A keras-hub .keras holds its config; its reference is rebuilt from it, not from a file."""
    from converter.errors import UsageError
    from converter.provenance import use_config_file
    from converter.readers.base import Source

    model = tmp_path / "model.keras"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"backbone": {}}))
    source = Source(model, "keras-hub", {"model_type": "roberta"}, model, [], [model])
    with pytest.raises(UsageError, match="keeps its config inside its model files"):
        use_config_file(source, config)
    assert source.config == {"model_type": "roberta"}  # unchanged
