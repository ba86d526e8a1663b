"""keras-hub's encoder family — BERT, XLM-RoBERTa, ALBERT, DistilBERT, ELECTRA — with its text
classifiers and masked LMs, made by keras-hub itself from real trained weights
(tests/keras_hub_fixtures.py) and converted from every form keras-hub saves.

For each architecture × task: the default `convert` of the preset exits 0, passes the default
gate against keras-hub rebuilt from its config, writes the trained tensors bit for bit and loads
strictly in transformers 4.57 and 5; `.keras` and bare `.weights.h5` give byte-identical weights,
and `tf2pt verify` proves those forms through their own reference path. A wrong fact in a table
(activation, epsilon, a masked-LM head declared equal when it is not) fails parity at the output
it first changes.

The BERT and DistilBERT task presets carry keras-hub's own WordPiece tokenizer, built by its
importer from the trained model's vocabulary: `AutoTokenizer.from_pretrained(OUT)` gives keras-hub's
ids on multilingual text. The XLM-RoBERTa and ALBERT presets carry none (no SentencePiece model
of the trained vocabulary exists); their keras-hub SentencePiece tokenizers are converted and
proven by the tokenizer tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from .conftest import read_json, run_cli
from .keras_hub_fixtures import (
    CASES,
    FAMILIES,
    NUM_CLASSES,
    POSITIONS,
    WORDPIECE,
    keras_hub_model,
    save_forms,
    save_shell,
)
from .test_transformers5 import HF5_PYTHON

LAYERS = 6  # all-MiniLM-L6-v2
HEAD_OUTPUTS = {
    "base-model": [],
    "sequence-classification": ["logits"],
    "masked-lm": ["logits"],
}
POOLED = {"bert", "albert"}  # backbones whose pooled_output transformers' base model also has


class KerasHubCorpus:
    """Shells, keras-hub models and conversions, each made on first use and kept."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[tuple, object] = {}

    def _once(self, key: tuple, build):
        if key not in self.cache:
            self.cache[key] = build(self.root / "-".join(map(str, key)))
        return self.cache[key]

    def shell(self, arch: str) -> Path | None:
        if arch == "electra":
            return None
        return self._once(("shell", arch), lambda d: save_shell(arch, d))

    def sources(self, arch: str, head: str) -> dict[str, Path]:
        """The preset, and the other forms a test of this architecture × task converts."""
        seed = 100 + list(FAMILIES).index(arch) * 10 + list(FAMILIES[arch].keras).index(head)
        forms = ("preset", *OTHER_FORMS.get((arch, head), ()))
        return self._once(
            ("src", arch, head),
            lambda d: save_forms(keras_hub_model(arch, head, self.shell(arch), seed), d, forms),
        )

    def converted(self, arch: str, head: str, form: str = "preset") -> Path:
        """The default `convert` (verified) of the preset; other forms without verification
        (their own reference path is proven by `tf2pt verify`)."""

        def convert(out: Path) -> Path:
            flags = [] if form == "preset" else ["--no-verify"]
            code, _, err = run_cli(
                ["convert", str(self.sources(arch, head)[form]), str(out), *flags]
            )
            assert code == 0, err
            return out

        return self._once(("out", arch, head, form), convert)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Iterator[KerasHubCorpus]:
    """Removed at the end of the session: some 3 GB of MiniLM-sized models."""
    root = tmp_path_factory.mktemp("keras_hub_family")
    yield KerasHubCorpus(root)
    shutil.rmtree(root, ignore_errors=True)


def _parity(out: Path) -> dict:
    return read_json(out / "parity_report.json")


def _trained_tensors(corpus: KerasHubCorpus, arch: str) -> dict[str, np.ndarray]:
    """The trained encoder as the shell holds it (ELECTRA: MiniLM's, the positions cut)."""
    if arch == "electra":
        from .keras_hub_fixtures import _minilm

        return _minilm(POSITIONS)
    return load_file(str(corpus.shell(arch) / "model.safetensors"))


HEAD_PREFIXES = ("lm_head.", "cls.", "predictions.", "sop_classifier.", "vocab_", "classifier")


def _assert_trained_tensors_exact(out: Path, trained: dict[str, np.ndarray]) -> None:
    """Every trained tensor of the encoder reached the output bit for bit, under its name less
    the base-model prefix (keras-hub imported it, saved it, tf2pt read it back)."""
    written = load_file(str(out / "model.safetensors"))
    by_suffix = {k.split(".", 1)[1] if k.split(".")[0] in _BASES else k: k for k in written}
    compared = 0
    for name, value in trained.items():
        name = name.split(".", 1)[1] if name.split(".")[0] in _BASES else name
        if name.startswith(HEAD_PREFIXES) or name not in by_suffix:
            assert name.startswith(HEAD_PREFIXES + ("pooler.",)), name
            continue
        np.testing.assert_array_equal(written[by_suffix[name]], value, err_msg=name)
        compared += 1
    assert compared >= 6 * 16 + 4, compared


_BASES = {"bert", "roberta", "albert", "distilbert", "electra"}


@pytest.mark.parametrize(("arch", "head"), CASES)
def test_trained_weights_through_keras_hub_convert_exactly_and_pass_the_default_gate(
    corpus, arch, head
):
    out = corpus.converted(arch, head)
    parity = _parity(out)
    assert parity["passed"] and parity["gate"]["kind"] == "measured-noise"
    names = [o["name"] for o in parity["outputs"]]
    pooled = ["pooler_output"] if head == "base-model" and arch in POOLED else []
    assert names == [f"hidden_states[{i}]" for i in range(LAYERS + 1)] + pooled + HEAD_OUTPUTS[head]
    for o in parity["outputs"]:
        assert o["noise"] > 0 and o["max_abs_diff"] <= o["tolerance"], o
    assert parity["reference"] == f"keras-hub's {FAMILIES[arch].keras[head]}"
    config = read_json(out / "config.json")
    assert config["architectures"] == [FAMILIES[arch].transformers[head]]
    assert config["model_type"] == FAMILIES[arch].model_type
    if head == "sequence-classification":
        assert len(config["id2label"]) == NUM_CLASSES
    _assert_trained_tensors_exact(out, _trained_tensors(corpus, arch))
    report = read_json(out / "conversion_report.json")
    assert report["counts"]["unexpected"] == 0 and report["counts"]["missing"] == 0


# Each form through its own reference path (keras.saving.load_model; the keras-hub classes built
# from the dimensions inferred from a bare weights file), every architecture and task in one form.
FORMS_CASES = [
    ("bert", "masked-lm", "model.keras"),
    ("bert", "sequence-classification", "model.weights.h5"),
    ("xlm-roberta", "sequence-classification", "model.keras"),
    ("xlm-roberta", "masked-lm", "model.weights.h5"),
    ("albert", "masked-lm", "model.keras"),
    ("distilbert", "sequence-classification", "model.keras"),
    ("distilbert", "masked-lm", "model.weights.h5"),
    ("electra", "base-model", "model.weights.h5"),
]
# a bare weights file records no dropout rates: the config class's defaults stand in
OTHER_FORMS: dict[tuple[str, str], tuple[str, ...]] = {(a, h): (f,) for a, h, f in FORMS_CASES}
OTHER_FORMS["albert", "base-model"] = ("model.weights.h5",)  # refused, see below
UNRECORDED = {"hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"} | {
    "dropout",
    "attention_dropout",
    "seq_classif_dropout",
}


@pytest.mark.parametrize(("arch", "head", "form"), FORMS_CASES)
def test_keras_file_and_bare_weights_give_the_presets_bytes_and_verify(corpus, arch, head, form):
    preset = corpus.converted(arch, head)
    out = corpus.converted(arch, head, form)
    assert (out / "model.safetensors").read_bytes() == (preset / "model.safetensors").read_bytes()
    config, inferred = read_json(preset / "config.json"), read_json(out / "config.json")
    differ = {k for k in config.keys() | inferred.keys() if config.get(k) != inferred.get(k)}
    assert differ <= (UNRECORDED if form == "model.weights.h5" else set()), differ
    code, _, err = run_cli(["verify", str(corpus.sources(arch, head)[form]), str(out)])
    assert code == 0 and "parity passed" in err, err
    parity = _parity(out)
    assert parity["passed"] and len(parity["outputs"]) >= LAYERS + 1
    shutil.rmtree(out)  # read by no other test


@pytest.mark.parametrize("arch", ["bert", "albert", "distilbert"])
def test_masked_lm_head_keras_hub_computes_differently_is_declared_and_measured(corpus, arch):
    """keras-hub's MaskedLMHead normalises with eps 1e-5 (and BERT's applies exact gelu), the
    transformers classes with the encoder's values: parity checks the head as transformers
    computes it, and the report says how far keras-hub's own logits are — far beyond the gate
    at this scale, so the declaration is needed, not decoration."""
    parity = _parity(corpus.converted(arch, "masked-lm"))
    (deviation,) = parity["declared_deviations"]
    logits = next(o for o in parity["outputs"] if o["name"] == "logits")
    assert deviation["output"] == "logits" and deviation["max_abs_diff"] > 10 * logits["tolerance"]
    assert deviation["source"]["layer_norm_epsilon"] == pytest.approx(1e-5)
    assert deviation["target"]["layer_norm_epsilon"] == pytest.approx(1e-12)
    if arch == "bert":
        assert deviation["target"]["activation"] == "gelu_new"
    markdown = (corpus.converted(arch, "masked-lm") / "parity_report.md").read_text()
    assert "declared deviation" in markdown


def test_xlm_roberta_masked_lm_head_is_reproduced_as_it_is(corpus):
    """RoBERTa's LM head uses keras-hub's own eps (1e-5) and exact gelu: nothing to declare."""
    assert _parity(corpus.converted("xlm-roberta", "masked-lm"))["declared_deviations"] == []


def test_a_bare_albert_weights_file_is_refused_naming_what_it_lacks(corpus, tmp_path):
    src = corpus.sources("albert", "base-model")["model.weights.h5"]
    code, _, err = run_cli(["convert", str(src), str(tmp_path / "out")])
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err
    assert last.startswith(f"tf2pt: error: {src}: the source records no num_hidden_layers")
    assert "preset" in last and not (tmp_path / "out").exists()


TEXTS = [
    "Café, naïve, résumé — jalapeño!",
    "Straße, Größe, Ärger über Öl.",
    "東京は日本の首都です。北京欢迎你",
    "Привет, мир! Ελληνικά: Καλημέρα.",
    "tabs\tand   runs   of  spaces\n",
    "don't, we'll, it's, y'all're",
]
TOKENIZERS = [(arch, head) for arch, head in CASES if arch in WORDPIECE and head != "base-model"]


@pytest.mark.parametrize(("arch", "head"), TOKENIZERS)
def test_the_converted_tokenizer_gives_keras_hubs_own_ids(corpus, arch, head):
    import keras_hub
    import transformers

    out = corpus.converted(arch, head)
    tokenizer = read_json(out / "conversion_report.json")["tokenizer"]
    assert tokenizer["parity"]["passed"], tokenizer
    assert tokenizer["parity"]["rows_equal"] == tokenizer["parity"]["rows_compared"] > 20
    preset = corpus.sources(arch, head)["preset"]
    keras_tokenizer = getattr(
        keras_hub.models, FAMILIES[arch].keras["base-model"].replace("Backbone", "Tokenizer")
    ).from_preset(str(preset))
    hf = transformers.AutoTokenizer.from_pretrained(str(out))
    for text in TEXTS:
        theirs = np.asarray(keras_tokenizer(text)).tolist()
        assert hf(text, add_special_tokens=False)["input_ids"] == theirs, text


# --- the facts the tables write are keras-hub's own code's -------------------------------------

TINY = dict(num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=20, max_sequence_length=8)
TINY_BACKBONES = {  # keras-hub class, its own keyword for the vocabulary, extra arguments
    "bert": ("BertBackbone", "vocabulary_size", {}),
    "albert": ("AlbertBackbone", "vocabulary_size", {"embedding_dim": 8}),
    "distilbert": ("DistilBertBackbone", "vocabulary_size", {}),
    "electra": ("ElectraBackbone", "vocab_size", {"embedding_dim": 8}),
    "xlm-roberta": ("XLMRobertaBackbone", "vocabulary_size", {}),
}
ACTIVATION_KEY = {"distilbert": "activation"}  # DistilBertConfig's name for hidden_act


@pytest.mark.parametrize("arch", list(TINY_BACKBONES))
def test_each_keras_hub_backbone_fixes_the_activation_and_epsilon_its_table_writes(arch):
    """Read off keras-hub's layers, not its source: every LayerNormalization's epsilon, what
    each encoder layer's activation computes (against transformers' function of that name), and
    whether the backbone takes token types at all."""
    import keras_hub

    from converter.tables import load_table

    from .test_producer_facts import SAME, X, _gap, _transformers

    cls, vocabulary, extra = TINY_BACKBONES[arch]
    table = load_table(f"{arch}-keras-hub")
    defaults = {**table.config_defaults}
    backbone = getattr(keras_hub.models, cls)(**{vocabulary: 50}, **TINY, **extra)
    norms = [backbone.embeddings_layer_norm]
    layers = [layer for group in backbone.transformer_layers for layer in _layers(group)]
    for layer in layers:
        norms += [layer._self_attention_layer_norm, layer._feedforward_layer_norm]
        activation = defaults[ACTIVATION_KEY.get(arch, "hidden_act")]
        assert _gap(layer.activation(X), _transformers(activation)) < SAME, activation
    eps = defaults.get("layer_norm_eps", 1e-12)  # DistilBERT's is fixed in transformers' code
    assert {n.epsilon for n in norms} == {eps}
    fed = set(table.reference["feeds"])
    assert set(backbone.input) == fed, (set(backbone.input), fed)


def _layers(group) -> list:
    return list(group) if isinstance(group, list) else [group]


@pytest.mark.parametrize("arch", ["bert", "albert", "distilbert"])
def test_keras_hub_masked_lm_heads_compute_what_the_declared_deviation_says(arch):
    """The head_as_target declaration is about a real difference: keras-hub's MaskedLMHead's own
    epsilon (and BERT's activation) differ from the values the transformers class uses."""
    import keras_hub

    from converter.tables import load_table

    from .test_producer_facts import DIFFERENT, X, _gap, _transformers

    cls, vocabulary, extra = TINY_BACKBONES[arch]
    prefix = cls.removesuffix("Backbone")
    backbone = getattr(keras_hub.models, cls)(**{vocabulary: 50}, **TINY, **extra)
    task = getattr(keras_hub.models, prefix + "MaskedLM")(backbone, preprocessor=None)
    ids = np.array([[2, 5, 6, 3]], np.int32)
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids), "mask_positions": ids * 0}
    if "segment_ids" in backbone.input:
        inputs["segment_ids"] = np.zeros_like(ids)
    task(inputs)  # builds the head
    head = task.masked_lm_head
    table = load_table(f"{arch}-keras-hub")
    target = table.reference["heads"]["masked-lm"]["head_as_target"]
    dims = {**table.config_defaults}
    eps = dims.get(target["layer_norm_epsilon"], target["layer_norm_epsilon"])
    assert head._intermediate_layer_norm.epsilon != eps
    if "activation" in target:
        activation = dims[target["activation"]]
        assert _gap(head._intermediate_dense.activation(X), _transformers(activation)) > DIFFERENT


# --- a wrong fact in a table is caught ----------------------------------------------------------


@pytest.fixture
def mutated_tables(tmp_path, monkeypatch):
    """The shipped tables in a temporary directory, with edits applied to one of them."""
    from converter.tables import config_keys as table_config
    from converter.tables import load as table_loader
    from converter.tables import load_table, tables_dir

    tables = tmp_path / "mappings"
    shutil.copytree(tables_dir(), tables)
    monkeypatch.setattr(table_loader, "tables_dir", lambda: tables)

    def mutate(name: str, edit) -> None:
        path = tables / f"{name}.yaml"
        data = yaml.safe_load(path.read_text())
        edit(data)
        path.write_text(yaml.safe_dump(data))
        load_table.cache_clear()
        table_config.target_rules.cache_clear()

    yield mutate
    load_table.cache_clear()
    table_config.target_rules.cache_clear()


def _head_as_target_dropped(data: dict) -> None:
    del data["reference"]["heads"]["masked-lm"]["head_as_target"]


MUTATIONS = {
    # keras-hub's encoder uses the tanh gelu: the exact one differs from the first layer on
    "bert exact gelu": ("bert", "base-model", {"hidden_act": "gelu"}, "hidden_states[1]"),
    # keras-hub's BERT normalises with 1e-12: RoBERTa's 1e-5 shows at the embeddings
    "bert eps 1e-5": (
        "bert",
        "sequence-classification",
        {"layer_norm_eps": 1e-5},
        "hidden_states[0]",
    ),
    # keras-hub's DistilBERT uses the exact gelu: the tanh form differs from the first layer on
    "distilbert tanh gelu": (
        "distilbert",
        "base-model",
        {"activation": "gelu_new"},
        "hidden_states[1]",
    ),
    # keras-hub's ALBERT uses the tanh gelu in its shared layers
    "albert exact gelu": (
        "albert",
        "sequence-classification",
        {"hidden_act": "gelu"},
        "hidden_states[1]",
    ),
    # the masked-LM head declared equal to keras-hub's when it is not
    "bert head as keras-hub's": ("bert", "masked-lm", _head_as_target_dropped, "logits"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_wrong_fact_in_the_table_fails_parity_where_it_first_matters(
    corpus, mutated_tables, mutation, tmp_path
):
    arch, head, change, first = MUTATIONS[mutation]
    src = corpus.sources(arch, head)["preset"]
    table = f"{arch}-keras-hub"
    if callable(change):
        mutated_tables(table, change)
    else:
        mutated_tables(table, lambda data: data["config_defaults"].update(change))
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out)])
    assert code == 1 and "parity failed" in err and "Traceback" not in err, err
    assert not out.exists()
    report = _parity(out.with_name("out.parity-failed"))
    shutil.rmtree(out.with_name("out.parity-failed"))
    assert report["first_divergence"]["name"] == first
    failed = next(o for o in report["outputs"] if o["name"] == first)
    assert failed["max_abs_diff"] > failed["tolerance"]


# --- transformers 5 -----------------------------------------------------------------------------

LOAD_ALL = r"""
import json, sys
import numpy as np, torch, transformers
ids = torch.from_numpy(np.load(sys.argv[1]))
report = {"version": transformers.__version__, "models": {}}
for out_dir in sys.argv[2:]:
    config = json.load(open(out_dir + "/config.json"))
    cls = getattr(transformers, config["architectures"][0])
    model, info = cls.from_pretrained(out_dir, output_loading_info=True)
    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
    first = out.logits if "logits" in out else out.last_hidden_state
    np.save(out_dir + "/hf5.npy", first.numpy())
    report["models"][out_dir] = {k: list(v) for k, v in info.items() if v}
print(json.dumps(report))
"""


def test_every_converted_preset_loads_strictly_and_computes_the_same_in_transformers_5(
    corpus, tmp_path
):
    import torch
    import transformers

    assert HF5_PYTHON.exists(), f"{HF5_PYTHON} is missing: run `make install`"
    outs = [corpus.converted(arch, head) for arch, head in CASES]
    ids = np.random.default_rng(0).integers(1000, 20000, size=(2, 12)).astype(np.int64)
    np.save(tmp_path / "ids.npy", ids)
    run = subprocess.run(
        [str(HF5_PYTHON), "-c", LOAD_ALL, str(tmp_path / "ids.npy"), *map(str, outs)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["version"].startswith("5.")
    assert report["models"] == {str(out): {} for out in outs}
    for out in outs:
        config = read_json(out / "config.json")
        cls = getattr(transformers, config["architectures"][0])
        model, info = cls.from_pretrained(str(out), output_loading_info=True)
        assert all(not v for v in info.values()), (out, info)
        model.eval()
        with torch.no_grad():
            result = model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.ones_like(torch.from_numpy(ids)),
            )
        first = result.logits if "logits" in result else result.last_hidden_state
        # the two versions may order float32 sums differently: the same within the gate
        name = "logits" if "logits" in result else f"hidden_states[{LAYERS}]"
        gate = next(o for o in _parity(out)["outputs"] if o["name"] == name)
        diff = float(np.abs(np.load(out / "hf5.npy") - first.numpy()).max())
        assert diff <= gate["tolerance"], (out.name, name, diff, gate["tolerance"])


# --- what is not keras-hub's encoder family ----------------------------------------------------


def test_a_keras_hub_model_of_another_family_is_refused_listing_what_converts(tmp_path):
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    backbone.save_to_preset(str(tmp_path / "gpt2"))
    code, _, err = run_cli(["convert", str(tmp_path / "gpt2"), str(tmp_path / "out")])
    assert code == 2 and "Traceback" not in err
    assert "model_type 'gpt2' is not a supported architecture for keras-hub checkpoints" in err
    for arch, family in FAMILIES.items():
        assert ", ".join(sorted(family.keras.values())) in err, arch
    assert not (tmp_path / "out").exists()
