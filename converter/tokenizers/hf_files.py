"""Write a tokenizer as standard Hugging Face files, with the `tokenizers` library only.

transformers would do this too, but importing it pulls in torch, and conversion alone must stay
light. The fast file (`tokenizer.json`) is built by `tokenizers`; `tokenizer_config.json` and
`special_tokens_map.json` are plain data per family (mappings/tokenizers/families.yaml); the slow
files (`vocab.json` + `merges.txt`, `vocab.txt`, a SentencePiece model) are written beside them
when the family's slow class gives the same ids.

Style: `faithful` writes the source's own rules; where they are not the family's canonical ones,
the class is `PreTrainedTokenizerFast`, which loads tokenizer.json as it is in transformers 4 and
5 alike (5's model classes rebuild their own normalizer and pre-tokenizer, and would silently
give the canonical ids); the slow files are still written, as the vocabulary tools read, but
AutoTokenizer does not use them. `canonical` writes the family's canonical tokenizer under its
own class, a chosen deviation from the source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from .families import Family
from .fastbpe import FastBpe
from .parity import corpus_rows
from .pipelines import Built, build
from .rules import DEFAULT_STYLE
from .sources import TokenizerPlan

SPECIALS_FILE = "special_tokens_map.json"
GENERIC_CLASS = "PreTrainedTokenizerFast"
SHOWN_ROWS = 10  # deviating rows listed in the reports


@dataclass
class Deviation:
    """Corpus rows on which the source's tokenizer and the family's canonical one disagree."""

    canonical: str  # the canonical tokenizer, described
    compared: int
    rows: list[dict[str, Any]]  # {row, text}
    chosen: bool  # the written tokenizer is the canonical one: these rows differ from the source
    why: str = ""  # why the canonical one was written, when it was

    @property
    def row_numbers(self) -> list[int]:
        return [r["row"] for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "canonical": self.canonical,
            "rows_compared": self.compared,
            "rows_differing": len(self.rows),
            "rows": self.rows[:SHOWN_ROWS],
            "chosen": self.chosen,
            **({"why": self.why} if self.why else {}),
        }

    def sentence(self) -> str:
        if not self.rows:
            return f"the source's tokenizer is {self.canonical}'s on every corpus row"
        rows = ", ".join(f"#{r['row']} {r['text'][:30]!r}" for r in self.rows[:3])
        more = f" and {len(self.rows) - 3} more" if len(self.rows) > 3 else ""
        if self.chosen:
            return (
                f"chosen deviation ({self.why}): the written tokenizer, {self.canonical}, gives "
                f"other ids than the source on {len(self.rows)} of {self.compared} rows: "
                f"{rows}{more}"
            )
        return (
            f"the source's tokenizer deviates from {self.canonical} on {len(self.rows)} of "
            f"{self.compared} rows ({rows}{more}); the written tokenizer follows the source"
        )


@dataclass
class Written:
    files: list[str]
    style: str  # what was written: "faithful" or "canonical"
    tokenizer_class: str
    deviation: Deviation | None
    evidence: list[str] = field(default_factory=list)


def _json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _present_specials(family: Family, ids: dict[str, int], where: str) -> dict[str, str]:
    """The family's special tokens found in the vocabulary; a missing [CLS]/<s>-like token
    would be added with a new id past the embedding matrix, so it is left out instead (and the
    parity check then shows whether the source used it)."""
    present = {role: tok for role, tok in family.specials.items() if tok in ids}
    if "cls_token" not in present or "sep_token" not in present:
        raise InputError(
            f"the vocabulary lacks {family.specials['cls_token']}/{family.specials['sep_token']}",
            where,
            "pass the tokenizer that belongs to this model with --tokenizer PATH",
        )
    return present


def _template_tokens(template: str) -> list[str]:
    pieces = (p.split(":")[0] for p in template.split())
    return [p for p in pieces if not p.startswith("$")]


def finish(tokenizer, family: Family, where: str) -> dict[str, str]:
    """Add the family's packing and special tokens to `tokenizer`; return the specials present."""
    from tokenizers import AddedToken, processors

    ids = tokenizer.get_vocab()
    specials = _present_specials(family, ids, where)
    used = dict.fromkeys(_template_tokens(family.single) + _template_tokens(family.pair))
    tokenizer.post_processor = processors.TemplateProcessing(
        single=family.single,
        pair=family.pair,
        special_tokens=[(token, ids[token]) for token in used],
    )
    for role, token in sorted(specials.items(), key=lambda rt: ids[rt[1]]):
        lstrip = role in family.lstrip
        tokenizer.add_special_tokens([AddedToken(token, lstrip=lstrip, normalized=False)])
    return specials


def _fastbpe_pair(plan: TokenizerPlan) -> tuple[FastBpe, FastBpe]:
    codes = plan.files["bpe.codes"].decode("utf-8")
    dictionary = plan.files["vocab.txt"].decode("utf-8")
    return (
        FastBpe.from_files(codes, dictionary, plan.origin),
        FastBpe.from_files(codes, dictionary, plan.origin, hf_words=True),
    )


def deviation(plan: TokenizerPlan, built: Built, why: str, texts=()) -> Deviation | None:
    """The corpus rows (with `texts`) where the faithful and canonical tokenizers disagree."""
    rows = corpus_rows(tuple(texts))
    if built.family.model == "fastbpe":
        faithful, canonical = _fastbpe_pair(plan)
        ids_a = [faithful.encode(a, b) for a, b in rows]
        ids_b = [canonical.encode(a, b) for a, b in rows]
    elif built.same:
        return None
    else:
        ids_a = [e.ids for e in built.faithful.encode_batch([_row(r) for r in rows])]
        ids_b = [e.ids for e in built.canonical.encode_batch([_row(r) for r in rows])]
    differing = [
        {"row": i, "text": text if pair is None else f"{text} ||| {pair}"}
        for i, ((text, pair), a, b) in enumerate(zip(rows, ids_a, ids_b, strict=True))
        if a != b
    ]
    described = f"Hugging Face's {built.family.tokenizer_class}"
    return Deviation(described, len(rows), differing, bool(why), why)


def _row(row: tuple[str, str | None]):
    return row[0] if row[1] is None else row


def _slow_bytes(plan: TokenizerPlan, family: Family) -> dict[str, bytes]:
    return {name: plan.files[name] for name in family.slow_files if name in plan.files}


def _finished(plan: TokenizerPlan) -> tuple[Built, dict[str, str]]:
    built = build(plan)
    specials = dict(built.family.specials)
    for pipeline in (built.faithful, built.canonical):
        if pipeline is not None:
            specials = finish(pipeline, built.family, plan.origin)
    return built, specials


def _why(built: Built, faithful: bool) -> str:
    """Why the written tokenizer is not the faithful one ("" when it is)."""
    if built.faithful is None:
        return f"{built.family.tokenizer_class} is Python code, with no faithful alternative"
    return "" if faithful else "--tokenizer-style canonical"


def expected_deviation(plan: TokenizerPlan, style: str, texts=()) -> Deviation | None:
    """The deviation a tokenizer written in `style` has (for `verify` of an existing output)."""
    built, _ = _finished(plan)
    faithful = style == "faithful" or built.same or built.faithful is None
    return deviation(plan, built, _why(built, faithful), texts)


def write_hf_tokenizer(
    plan: TokenizerPlan,
    model_max_length: int,
    directory: Path,
    style: str = DEFAULT_STYLE,
    texts: tuple[str, ...] = (),
) -> Written:
    """Write tokenizer.json (when the family has one), tokenizer_config.json,
    special_tokens_map.json and the slow files into `directory`."""
    built, specials = _finished(plan)
    family = built.family
    faithful = style == "faithful" or built.same or built.faithful is None
    tokenizer = built.faithful if faithful and built.faithful is not None else built.canonical
    generic = (faithful and not built.same and built.faithful is not None) or not built.class_ok
    options = plan.options if faithful else {**plan.options, **built.canonical_options}
    written_style = "faithful" if faithful and built.faithful is not None else "canonical"
    names: list[str] = []
    if built.slow_ok:  # the vocabulary files too, for tools that read them (and the slow class)
        for name, data in _slow_bytes(plan, family).items():
            (directory / name).write_bytes(data)
            names.append(name)
    if tokenizer is not None:
        tokenizer.save(str(directory / "tokenizer.json"))
        names.append("tokenizer.json")
    config = {
        **family.config,
        **options,  # said for the reader; PreTrainedTokenizerFast ignores them
        **specials,
        "tokenizer_class": GENERIC_CLASS if generic else family.tokenizer_class,
        "model_max_length": model_max_length,
    }
    _json(directory / "tokenizer_config.json", config)
    _json(directory / SPECIALS_FILE, specials)
    names += ["tokenizer_config.json", SPECIALS_FILE]
    return Written(
        names,
        written_style,
        config["tokenizer_class"],
        deviation(plan, built, _why(built, faithful), texts),
        built.evidence,
    )
