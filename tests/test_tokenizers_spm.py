"""SentencePiece tokenizers → XLMRobertaTokenizer / AlbertTokenizer / CamembertTokenizer files
with the ids the source gives: keras-hub's XLM-R and ALBERT tokenizers (saved by keras-hub's own
save_to_preset), google-research/albert releases (`30k-clean.model` beside the checkpoint) and
fairseq releases (`sentencepiece.bpe.model` + `dict.txt`). The models are trained here by the
`sentencepiece` package (unigram and BPE) on multilingual text; parity's reference is the
source's own tokenizer: keras-hub's layer for a preset, the `sentencepiece` processor with the
release's rules and numbering otherwise. AutoTokenizer must give the same ids in transformers 5.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from converter.tokenizers.corpus import SINGLES
from converter.tokenizers.parity import corpus_rows
from converter.tokenizers.references import hf_ids, load_hf
from converter.tokenizers.spm_model import read_model

from .albert_fixtures import build_tf_albert, save_albert_tf1_checkpoint
from .conftest import read_json, run_cli
from .multilingual_text import SENTENCES
from .tokenizer_helpers import (
    ALBERT_PIECES,
    convert_tokenizer,
    hf5_ids,
    train_sentencepiece,
)

ROWS = len(SINGLES) + 2


def _processor(model: bytes):
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_proto=model)


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    return {
        "unigram": train_sentencepiece("unigram"),
        "bpe": train_sentencepiece("bpe"),
        "albert-unigram": train_sentencepiece("unigram", **ALBERT_PIECES),
        "albert-bpe": train_sentencepiece("bpe", **ALBERT_PIECES),
        # google-research/albert's 30k-clean.model: trained on lowercased text
        "albert-lower": train_sentencepiece("unigram", lowercase=True, **ALBERT_PIECES),
    }


def test_the_model_reader_agrees_with_sentencepieces_own_protobuf(models):
    from sentencepiece import sentencepiece_model_pb2

    for data in models.values():
        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(data)
        mine = read_model(data, "test")
        assert [(p.piece, p.score, p.type) for p in mine.pieces] == [
            (p.piece, pytest.approx(p.score), p.type) for p in proto.pieces
        ]
        spec, norm = proto.trainer_spec, proto.normalizer_spec
        assert (mine.model_type, mine.unk_id, mine.byte_fallback) == (
            spec.model_type,
            spec.unk_id,
            spec.byte_fallback,
        )
        assert (
            mine.precompiled_charsmap == norm.precompiled_charsmap and mine.normalizer == norm.name
        )
        assert (mine.add_dummy_prefix, mine.remove_extra_whitespaces) == (
            norm.add_dummy_prefix,
            norm.remove_extra_whitespaces,
        )


def _fairseq_dir(directory, model: bytes, order: list[str]):
    directory.mkdir()
    (directory / "sentencepiece.bpe.model").write_bytes(model)
    (directory / "dict.txt").write_text("".join(f"{p} 1\n" for p in order), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def sources(models, tmp_path_factory) -> dict[str, tuple]:
    """name → (source dir, model_type), each made as its producer makes it."""
    import keras_hub

    root = tmp_path_factory.mktemp("spm_sources")
    made = {}
    keras_made = {
        "keras-hub XLM-R (unigram)": (
            keras_hub.models.XLMRobertaTokenizer,
            "unigram",
            "xlm-roberta",
        ),
        "keras-hub ALBERT (unigram)": (
            keras_hub.models.AlbertTokenizer,
            "albert-unigram",
            "albert",
        ),
        "keras-hub ALBERT (BPE)": (keras_hub.models.AlbertTokenizer, "albert-bpe", "albert"),
    }
    for name, (cls, model, model_type) in keras_made.items():
        preset = root / name.replace(" ", "_")
        cls(proto=models[model]).save_to_preset(str(preset))
        made[name] = (preset, model_type)
    release = root / "albert_release"
    release.mkdir()
    (release / "30k-clean.model").write_bytes(models["albert-lower"])
    made["google-research/albert 30k-clean.model"] = (release, "albert")
    sp = _processor(models["unigram"])
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    made["fairseq, dict.txt in the model's order"] = (
        _fairseq_dir(root / "fairseq_xlmr", models["unigram"], pieces[3:]),
        "xlm-roberta",
    )
    counts = Counter(p for t in SINGLES for p in sp.encode(t, out_type=str))
    by_count = sorted(pieces[3:], key=lambda p: -counts[p])
    made["fairseq, dict.txt by frequency"] = (
        _fairseq_dir(root / "fairseq_freq", models["unigram"], by_count),
        "xlm-roberta",
    )
    made["fairseq, CamemBERT's dict.txt"] = (  # the model's <unk>, <s>, </s> kept as entries
        _fairseq_dir(root / "fairseq_camembert", models["unigram"], pieces),
        "camembert",
    )
    return made


@pytest.fixture(scope="module")
def converted(sources, tmp_path_factory):
    root = tmp_path_factory.mktemp("spm_out")
    return {
        name: (root / f"out{i}", *convert_tokenizer(src, root / f"out{i}", model_type))
        for i, (name, (src, model_type)) in enumerate(sources.items())
    }


CLASSES = {
    "keras-hub XLM-R (unigram)": "XLMRobertaTokenizer",
    "keras-hub ALBERT (unigram)": "PreTrainedTokenizerFast",  # keras-hub does not lowercase
    "keras-hub ALBERT (BPE)": "PreTrainedTokenizerFast",
    "google-research/albert 30k-clean.model": "PreTrainedTokenizerFast",
    "fairseq, dict.txt in the model's order": "XLMRobertaTokenizer",
    "fairseq, dict.txt by frequency": "XLMRobertaTokenizer",
    "fairseq, CamemBERT's dict.txt": "CamembertTokenizer",
}


def test_every_sentencepiece_source_gets_its_own_ids_on_the_whole_corpus(converted):
    for name, (out, _, parity) in converted.items():
        assert parity.passed and parity.rows == ROWS, (name, parity.first_difference)
        assert read_json(out / "tokenizer_config.json")["tokenizer_class"] == CLASSES[name], name


def test_slow_files_are_written_only_where_the_slow_class_numbers_pieces_the_same(converted):
    slow = {
        name: sorted(p.name for p in out.glob("*.model")) for name, (out, *_) in converted.items()
    }
    assert slow["keras-hub XLM-R (unigram)"] == ["sentencepiece.bpe.model"]
    assert slow["fairseq, dict.txt in the model's order"] == ["sentencepiece.bpe.model"]
    assert slow["fairseq, CamemBERT's dict.txt"] == ["sentencepiece.bpe.model"]
    assert slow["fairseq, dict.txt by frequency"] == []  # only tokenizer.json carries its order
    assert slow["keras-hub ALBERT (unigram)"] == ["spiece.model"]  # the vocabulary, for tools
    assert slow["keras-hub ALBERT (BPE)"] == []  # AlbertTokenizer cannot hold a BPE model


def test_transformers_5_gives_the_same_ids_from_the_same_files(converted):
    """transformers 4.57 gave the source's ids (parity passed); 5 must give the same."""
    v5 = hf5_ids([out for out, *_ in converted.values()])
    for name, (out, _, parity) in converted.items():
        assert parity.passed, name
        assert v5[str(out)][1] == hf_ids(load_hf(out), corpus_rows()), name


def test_keras_hub_albert_keeps_case_where_hugging_faces_albert_lowercases(sources, tmp_path):
    """keras-hub's AlbertTokenizer runs SentencePiece alone; Hugging Face's lowercases first.
    Canonical style writes Hugging Face's, a chosen deviation named row by row."""
    src, model_type = sources["keras-hub ALBERT (unigram)"]
    outcome, parity = convert_tokenizer(src, tmp_path / "c", model_type, style="canonical")
    deviation = outcome.deviation
    assert deviation.chosen and parity.passed
    assert 0 in deviation.row_numbers  # "Hello world!"
    assert "" not in [r["text"] for r in deviation.rows]
    assert set(parity.differing) == set(deviation.row_numbers)
    assert parity.equal == ROWS - len(deviation.rows)


def test_albert_lowercasing_left_out_fails_at_the_first_row_with_a_capital(sources, tmp_path):
    from converter.tokenizers import check_tokenizer, write_tokenizer
    from converter.tokenizers.hf_files import write_hf_tokenizer

    from .tokenizer_helpers import fake_source, out_dir

    src, _ = sources["google-research/albert 30k-clean.model"]
    outcome = write_tokenizer(fake_source(src), out_dir(tmp_path / "good", "albert"))
    assert outcome.plan.options["do_lower_case"] is True  # the pieces hold no capitals
    wrong = out_dir(tmp_path / "wrong", "albert")
    outcome.plan.options = {**outcome.plan.options, "do_lower_case": False}
    write_hf_tokenizer(outcome.plan, 512, wrong)
    outcome.plan.options["do_lower_case"] = True  # the source's, for the reference
    result = check_tokenizer(outcome, wrong)
    assert not result.passed and result.first_difference["row"] == 0  # "Hello world!"


def test_a_shifted_special_token_id_fails_at_the_first_row(converted, tmp_path):
    import shutil

    from converter.tokenizers import check_tokenizer

    out, outcome, _ = converted["keras-hub XLM-R (unigram)"]
    wrong = shutil.copytree(out, tmp_path / "wrong")
    data = json.loads((wrong / "tokenizer.json").read_text())
    data["post_processor"]["special_tokens"]["</s>"]["ids"] = [3]  # </s> one place up
    (wrong / "tokenizer.json").write_text(json.dumps(data))
    result = check_tokenizer(outcome, wrong)
    assert not result.passed and result.first_difference["row"] == 0
    assert result.equal == 0


def test_a_tf1_albert_release_converts_with_its_sentencepiece_model(tmp_path):
    """`convert` on a google-research/albert checkpoint with 30k-clean.model beside it: the
    tokenizer is found, converted by ALBERT's own rules and proven, where it was 'none'."""
    english = [t for t in SENTENCES if t.isascii()] * 8
    english = train_sentencepiece(
        "unigram", vocab_size=90, lowercase=True, text=english, **ALBERT_PIECES
    )
    assert _processor(english).get_piece_size() <= 99  # ALBERT_TINY's embedding rows
    model = build_tf_albert(tmp_path / "hf", "AlbertForPreTraining", seed=7)
    src = save_albert_tf1_checkpoint(model, tmp_path / "src")
    (src / "30k-clean.model").write_bytes(english)
    (src / "30k-clean.vocab").write_text("")  # shipped beside it; the model is what is read
    out = tmp_path / "out"
    code, _, err = run_cli(["convert", str(src), str(out)])
    assert code == 0, err
    tokenizer = read_json(out / "conversion_report.json")["tokenizer"]
    assert tokenizer["rules"].startswith("google-research/albert")
    assert tokenizer["parity"]["passed"] and tokenizer["parity"]["rows_compared"] == ROWS
    assert "google-research/albert's rules" in tokenizer["parity"]["reference"]


def test_a_damaged_sentencepiece_model_is_one_input_error_naming_the_file(models, tmp_path):
    from converter.errors import InputError

    src = tmp_path / "src"
    src.mkdir()
    (src / "30k-clean.model").write_bytes(models["albert-lower"][:-40] + b"\xff" * 9)
    with pytest.raises(InputError) as err:
        convert_tokenizer(src, tmp_path / "out", "albert")
    assert "not a SentencePiece model" in err.value.one_line()
    assert str(src) in err.value.one_line()
