"""Multilingual training text for the tokenizers the tests train themselves (byte-level BPE,
SentencePiece unigram and BPE, fastBPE codes): sentences written for these tests, in the
scripts the parity corpus stresses, with whitespace runs, tabs and contractions."""

from __future__ import annotations

SENTENCES: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog while the cat sleeps in the sun.",
    "Tokenizers split text into pieces; converters must keep every piece the same.",
    "It's a model that doesn't forget: we'll see what they've learned, and I'm sure you'd agree.",
    "Numbers like 3.14159, 1,000,000 and 2026-11-23 appear in reports every day.",
    "Le café de la gare est fermé le dimanche, mais la boulangerie reste ouverte.",
    "Les élèves étudient le français, l'anglais et les mathématiques à l'école.",
    "Die Straße ist lang, und die Größe der Stadt überrascht jeden Besucher.",
    "Über die Brücke gehen täglich viele Menschen zur Arbeit in München.",
    "El niño comió jalapeños y la señora bebió café con leche en la mañana.",
    "Русский текст: привет, мир! Москва — столица России, а Нева течёт в Петербурге.",
    "Мы читаем книги, пишем письма и говорим по-русски каждый день.",
    "Ελληνικά: Καλημέρα κόσμε, η θάλασσα είναι γαλάζια και ο ήλιος λάμπει.",
    "中文分词测试：我爱北京天安门，天安门上太阳升。今天天气很好。",
    "日本語のテキストです。東京タワーは高いです。私は毎日コーヒーを飲みます。",
    "한국어 문장입니다. 서울은 큰 도시이고 사람들이 많이 삽니다.",
    "عربي: مرحبا بالعالم، هذه جملة قصيرة باللغة العربية.",
    "हिन्दी में एक वाक्य। भारत एक बड़ा देश है और यहाँ कई भाषाएँ बोली जाती हैं।",
    "Tiếng Việt: Xin chào, tôi là sinh_viên trường đại_học Bách_khoa Hà_Nội.",
    "Hà_Nội là thủ_đô của Việt_Nam , thành_phố có nhiều hồ và cây xanh .",
    "Chúng_tôi đang nghiên_cứu về xử_lý ngôn_ngữ tự_nhiên cho tiếng Việt .",
    "Whitespace   runs\tand\ttabs\nand\n\nnewlines   end  ",
    "   leading spaces and trailing   ",
    "Café, naïve, résumé, jalapeño, Ångström and Øresund are words with accents.",
    "Ünïcödé text on the left and 日本語 on the right of the page.",
    "Visit https://example.com/path?q=tf2pt&lang=en#top or mail me@example.org today.",
    "camelCaseWords and snake_case_words and kebab-case-words in source code.",
    "Don't, can't, won't; it's O'Reilly's book and the children's toys.",
    "Emoji 😀👍🏽 and flags 🇫🇷 mixed with text ❤️ make tokenizers work hard.",
)


def training_text(repeat: int = 8) -> list[str]:
    """The sentences, repeated so small vocabularies train stably."""
    return list(SENTENCES) * repeat
