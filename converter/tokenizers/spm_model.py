"""A SentencePiece model file (`*.model`, a serialized `ModelProto`), read without protobuf.

Only what a Hugging Face tokenizer needs is read: the pieces (string, score, type), the model
type and special ids from the trainer spec, and the normalizer spec (its precompiled character
map and whitespace rules). Field numbers are sentencepiece_model.proto's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE = 1, 2
MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}


@dataclass(frozen=True)
class Piece:
    piece: str
    score: float
    type: int = NORMAL


@dataclass
class SentencePieceModel:
    pieces: list[Piece]
    model_type: int = UNIGRAM
    unk_id: int = 0
    byte_fallback: bool = False
    split_by_whitespace: bool = True
    treat_whitespace_as_suffix: bool = False
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    normalizer: str = ""
    ids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = {}
        for i, p in enumerate(self.pieces):
            self.ids.setdefault(p.piece, i)

    @property
    def kind(self) -> str:
        return MODEL_TYPES.get(self.model_type, str(self.model_type))


class _Malformed(Exception):
    pass


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes):
    """(field number, wire type, value) of each field of one message; length-delimited values
    are bytes, fixed32 values the 4 raw bytes."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at : at + size], at + size
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        else:
            raise _Malformed(f"wire type {wire}")
        if at > len(data):
            raise _Malformed("truncated field")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _piece(data: bytes) -> Piece:
    piece, score, kind = "", 0.0, NORMAL
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2:
            piece = value.decode("utf-8")
        elif number == 2 and wire == 5:
            score = struct.unpack("<f", value)[0]
        elif number == 3 and wire == 0:
            kind = value
    return Piece(piece, score, kind)


def parse_model(data: bytes) -> SentencePieceModel:
    pieces, trainer, normalizer = [], {}, {}
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2:
            pieces.append(_piece(value))
        elif number in (2, 3) and wire == 2:
            target = trainer if number == 2 else normalizer
            for n, _wire, v in _fields(value):
                target[n] = v
    if not pieces:
        raise _Malformed("no pieces")
    name = normalizer.get(1, b"")
    return SentencePieceModel(
        pieces=pieces,
        model_type=trainer.get(3, UNIGRAM),
        unk_id=_signed(trainer.get(40, 0)),
        byte_fallback=bool(trainer.get(35, 0)),
        split_by_whitespace=bool(trainer.get(22, 1)),
        treat_whitespace_as_suffix=bool(trainer.get(24, 0)),
        precompiled_charsmap=bytes(normalizer.get(2, b"")),
        add_dummy_prefix=bool(normalizer.get(3, 1)),
        remove_extra_whitespaces=bool(normalizer.get(4, 1)),
        escape_whitespaces=bool(normalizer.get(5, 1)),
        normalizer=name.decode("utf-8", "replace") if isinstance(name, bytes) else "",
    )


def read_model(data: bytes, where: Path | str) -> SentencePieceModel:
    """The model in `data` (the bytes of the file at `where`), or an input error naming it."""
    try:
        return parse_model(data)
    except (_Malformed, UnicodeDecodeError, struct.error) as exc:
        raise InputError(f"not a SentencePiece model ({exc})", where) from None
