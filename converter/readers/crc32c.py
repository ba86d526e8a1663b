"""CRC-32C (Castagnoli), the checksum TensorFlow stores for every tensor and index block, in numpy.

No dependency ships it in C, and a byte-at-a-time Python loop would take minutes on 500 MB. The
CRC register update is linear over GF(2), so a buffer is cut into many equal lanes whose
registers advance together, one numpy step per 4-byte word (two 64 Ki-entry tables), and the
lanes' registers are then folded pairwise with the linear map "advance over m zero bytes"
(`_Shift`). About 0.25 GB/s on one core: the README's performance notes give the cost.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

POLYNOMIAL = 0x82F63B78  # reflected Castagnoli polynomial
MASK_DELTA = 0xA282EAD8  # TF and LevelDB store a "masked" CRC
SMALL = 4096  # below this many bytes the plain loop is faster
MAX_LANES = 1 << 16
MIN_LANE = 64  # bytes


def _table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ POLYNOMIAL, table >> 1).astype(np.uint32)
    return table


TABLE = _table()
_TABLE_LIST = [int(v) for v in TABLE]


class _Shift:
    """The linear map on the CRC register of feeding `m` zero bytes, as four byte tables."""

    def __init__(self, columns: np.ndarray) -> None:
        self.columns = columns  # image of each of the 32 register bits
        bits = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(bool)
        self.tables = [
            np.bitwise_xor.reduce(np.where(bits, columns[8 * k : 8 * k + 8], 0), axis=1).astype(
                np.uint32
            )
            for k in range(4)
        ]

    def __call__(self, state: np.ndarray) -> np.ndarray:
        t = self.tables
        return (
            t[0][state & 0xFF]
            ^ t[1][(state >> 8) & 0xFF]
            ^ t[2][(state >> 16) & 0xFF]
            ^ t[3][state >> 24]
        )


@lru_cache(maxsize=64)
def _shift(m: int) -> _Shift:
    if m == 1:
        basis = np.uint32(1) << np.arange(32, dtype=np.uint32)
        return _Shift(TABLE[basis & 0xFF] ^ (basis >> 8))
    half = _shift(m // 2)
    twice = _Shift(half(half.columns))
    return twice if m % 2 == 0 else _Shift(_shift(1)(twice.columns))


def _extend_small(state: int, data: bytes | memoryview) -> int:
    table = _TABLE_LIST
    for byte in bytes(data):
        state = table[(state ^ byte) & 0xFF] ^ (state >> 8)
    return state


@lru_cache(maxsize=1)
def _word_tables() -> tuple[np.ndarray, np.ndarray]:
    """Feeding a 4-byte word XORed into the register is `_shift(4)`, split in 16-bit halves."""
    shift4, halves = _shift(4), np.arange(1 << 16, dtype=np.uint32)
    return shift4(halves), shift4(halves << 16)


def _lanes(data: np.ndarray, lanes: int) -> int:
    """The register after `data` (lanes × lane bytes, a lane a multiple of 4) starting from 0:
    the lanes advance side by side a 4-byte word per step, then fold pairwise."""
    low, high = _word_tables()
    words = np.ascontiguousarray(data.view("<u4").reshape(lanes, -1).T)
    states = np.zeros(lanes, dtype=np.uint32)
    low_half, high_half = np.empty_like(states), np.empty_like(states)
    for word in words:
        np.bitwise_xor(states, word, out=states)
        np.bitwise_and(states, 0xFFFF, out=low_half)
        np.right_shift(states, 16, out=high_half)
        np.bitwise_xor(low.take(low_half), high.take(high_half), out=states)
    span = 4 * words.shape[0]
    while len(states) > 1:
        states = _shift(span)(states[0::2]) ^ states[1::2]
        span *= 2
    return int(states[0])


def _extend(state: int, data: bytes | memoryview) -> int:
    """The raw register after feeding `data` to register `state` (no pre/post inversion)."""
    view = np.frombuffer(data, dtype=np.uint8)
    while len(view) >= SMALL:
        lanes = MAX_LANES
        while lanes > 2 and len(view) // lanes < MIN_LANE:
            lanes //= 2
        whole = (len(view) // (4 * lanes)) * 4 * lanes
        state = int(_shift(whole)(np.uint32(state))) ^ _lanes(view[:whole], lanes)
        view = view[whole:]
    return _extend_small(state, view.tobytes())


def extend(crc: int, data: bytes | memoryview) -> int:
    """CRC-32C of the bytes so far (`crc`, 0 for none) extended by `data`."""
    return _extend(crc ^ 0xFFFFFFFF, data) ^ 0xFFFFFFFF


def value(data: bytes | memoryview) -> int:
    return extend(0, data)


def unmask(masked: int) -> int:
    rot = (masked - MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + MASK_DELTA) & 0xFFFFFFFF
