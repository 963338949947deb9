"""Writes tokenizer_strings.json: hand-written edge cases plus seeded random mixes.

Run from the repo root: .venv/bin/python tests/parity/data/make_tokenizer_strings.py
The output is committed; rerunning with the same seed gives the same file.
"""
import json
import random
from pathlib import Path

HAND = [
    # digit runs, alone and glued to letters, spaces and punctuation
    "0", "7", "42", "123", "1234", "12345", "9876543210", "3.14159", "1,000,000", "-17", "+44 20 7946 0958",
    "2024-05-17T13:45:00Z", "v1.2.3", "abc123def", "x1y2z3", "100%", "$19.99", "1e-5", "0x1F", "٣٤٥", "²³",
    "a 1", "a  1", "a   12", "a\t1", "a\n1", "a \n 2", "x    42", "    1. item", "\t\t7", "1 2 3 4 5", "1  2   3",
    # punctuation runs
    "!!!", "?!?!", "...", "……", "---", "–—", "((()))", "[]{}<>", "!!! ??? ...", "'''", '"""', "@#$%^&*", "~`|\\",
    "a,b;c:d", "end.", "Mr. O'Neil's", "don't", "I'm", "we'll", "they're", "you've", "she'd", "DON'T", "It'S",
    # whitespace runs
    " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", " \t \n", "a  b", "a   b", "a\tb", "a\t\tb",
    "a\nb", "a\n\nb", "a \n\t b", "  leading", "trailing  ", "  both  ", "\u00a0nbsp\u00a0", "em\u2003space",
    "line1\r\nline2\r\n", "x\u200by",
    # unicode: accents, combining, CJK, RTL, other scripts
    "café", "naïve résumé", "Ångström", "e\u0301", "a\u0308o\u0308u\u0308", "Straße", "ĳsselmeer", "Ελληνικά",
    "Русский текст", "Українська", "中文字符", "你好，世界！", "日本語のテキスト", "カタカナ ー", "한국어 텍스트",
    "עברית", "مرحبا بالعالم", "שָׁלוֹם", "हिन्दी", "ภาษาไทย", "ᚠᚢᚦ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ﬁ ligature",
    # emoji, including ZWJ sequences, skin tones, flags, keycaps
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇯🇵", "❤️", "1️⃣", "🧑🏿‍💻 coding", "I ❤ NY", "emoji😀glued",
    # code
    "def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "print(\"hello\")",
    "<div class=\"x\">hi</div>", "SELECT * FROM t WHERE id = 42;", "fn main() { println!(\"{}\", 1); }",
    "x = {'a': [1, 2, 3]}", "#include <stdio.h>", "if a != b && c >= d:", "    indented\n        more",
    "https://example.com/path?q=1&r=two#frag", "user@example.com", "C:\\Users\\me\\file.txt", "$ ls -la | grep x",
    # chat special tokens and look-alikes
    "<|im_start|>user\nHello<|im_end|>\n", "<|im_start|>assistant\n", "<|endoftext|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>more", "<|im_start|><|im_end|>", "<|im_start |>", "< |im_end|>", "<|IM_START|>",
    "<repo_name>x<file_sep>y", "<jupyter_code>print(1)<jupyter_output>1",
    # ordinary prose
    "The quick brown fox jumps over the lazy dog.",
    "Please rewrite this sentence in my style, keeping the meaning.",
    "She said: \"It's 5 o'clock — time for tea!\"",
    "Hello, World! How are you today? I'm fine, thanks.",
    "",
]

POOLS = {
    "ascii": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "digits": "0123456789",
    "punct": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "space": [" ", " ", " ", "\t", "\n", "\r\n", "\u00a0", "\u3000"],
    "accents": "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿœšžł",
    "combining": ["\u0301", "\u0300", "\u0308", "\u0327", "\u0303"],
    "cjk": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现",
    "rtl": "אבגדהוזחטיכלמנסעפצקרשתابتثجحخدذرسشصضطظعغفقكلمنهوي",
    "emoji": ["😀", "😂", "🥲", "👍", "👍🏻", "👍🏿", "🎉", "🔥", "🚀", "👩‍💻", "👨‍👩‍👧", "🏳️‍🌈", "🇩🇪", "❤️", "✨", "🙏🏽"],
    "special": ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<filename>"],
    "words": ["the", " the", " style", " rewrite", "Hello", " world", "don't", " it's", "naïve", " café", "über",
              "def", "return", "self", "None", " 2024", "1st", "O'Brien", "e-mail", "co-operate"],
}


def piece(rng):
    kind = rng.choice(list(POOLS))
    pool = POOLS[kind]
    if kind in ("ascii", "digits", "punct", "accents", "cjk", "rtl"):
        return "".join(rng.choice(pool) for _ in range(rng.randint(1, 6)))
    if kind == "space":
        return "".join(rng.choice(pool) for _ in range(rng.randint(1, 4)))
    if kind == "combining":
        return rng.choice("aeiouAEIOU") + rng.choice(pool)
    return rng.choice(pool)


def random_strings(n, seed=20261122):
    rng = random.Random(seed)
    return ["".join(piece(rng) for _ in range(rng.randint(1, 12))) for _ in range(n)]


def main():
    strings = HAND + random_strings(180)
    out = Path(__file__).with_name("tokenizer_strings.json")
    out.write_text(json.dumps(strings, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{len(strings)} strings -> {out}")


if __name__ == "__main__":
    main()
