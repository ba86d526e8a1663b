"""A built-in multilingual text corpus for tokenizer parity.

Each row stresses one thing tokenizers disagree on: case, accents (composed and decomposed),
scripts without spaces, emoji, URLs, numbers, very long words (over 100 and over 200
characters), whitespace runs (before words, before tabs and newlines, at the end), tabs,
Unicode spaces, contractions (an apostrophe opening a word too), punctuation. Pairs check where
the special tokens go between two segments. Literal special tokens (`[CLS]`, `<s>`) are left out
on purpose: reference tokenizers treat them as plain text by design, HF tokenizers as specials.
"""

from __future__ import annotations

SINGLES: tuple[str, ...] = (
    "Hello world!",
    "The Quick Brown Fox Jumps Over The Lazy Dog.",
    "PARIS, London and new york are CITIES.",
    "Café, naïve, résumé, jalapeño, Ångström and Øresund.",
    "Straße, Größe, Ärger über Öl.",
    "Ελληνικά: Καλημέρα κόσμε.",
    "Русский текст: Привет, мир!",
    "日本語のテキストです。東京タワー",
    "中文分词测试：我爱北京天安门。",
    "한국어 문장입니다.",
    "عربي: مرحبا بالعالم",
    "हिन्दी में एक वाक्य।",
    "Emoji 😀👍🏽 and flags 🇫🇷 mixed with text ❤️.",
    "Visit https://example.com/path?q=tf2pt&lang=en#top or mail me@example.org",
    "Numbers 3.14159, 1,000,000, -42, 2026-11-23 and 10:40 UTC.",
    "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "x" * 120,
    "y" * 210,
    "Whitespace   runs\tand\ttabs\nand\n\nnewlines   end  ",
    "   leading spaces and trailing   ",
    "Punctuation!!! ... ??? (brackets) [square] {curly} \"quotes\" 'quoted' — dash – en",
    "camelCaseWords and snake_case_words and kebab-case-words",
    "Don't, can't, won't; it's O'Reilly's.",
    "a 'single' quote, we'LL see, I'M sure; the '90s ''quoted'' ``twice``",
    "Tiếng Việt: Xin chào, tôi là sinh_viên trường đại_học Bách_khoa Hà_Nội .",
    "Cyrillic ЁЛКИ-ПАЛКИ, Greek ΟΔΟΣ and decomposed Cafe\u0301 e\u0301te\u0301",
    "Prices: 9,000 and 12,345,678 items at 1,5 € — 3,14",
    "a\t\tb  \t  c \n d\r\ne\u3000f\u2009g\u00a0 h",
    "Mixed中文and English混合text",
    "Tab\u00a0non-breaking\u2003em-space\u200bzero-width",
    "ﬁnancial ligature and full-width ＡＢＣ１２３",
    "",
)

PAIRS: tuple[tuple[str, str], ...] = (
    ("Is this the first segment?", "Yes, and This is the Second one."),
    ("Ünïcödé on the left", "日本語 on the right"),
)
