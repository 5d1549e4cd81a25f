"""Note and profile text for datasets: plain words plus the cases that break clients.

The hard cases are deliberate: many scripts (CJK, Arabic and Hebrew right-to-left, Devanagari,
combining marks), emoji that are several code points (ZWJ families, skin tones, flags, keycaps),
astral-plane characters, JSON escapes (quotes, backslashes, tabs, newlines, U+2028), and very
long notes. Media URLs point at the relay's own HTTP origin so a browser that loads avatars and
images stays on the test machine (a 404 there is fine; a request to the internet is not).
"""

from __future__ import annotations

import orjson

from relaysim.dataset.rng import Rng

__all__ = ["Text", "http_origin"]

WORDS = (  # noqa: SIM905 (one word list reads better as text)
    "the a of to and in is it that for on with as at this be by from or an are was but not "
    "have all can just like one about what when we they so if more time people new today day "
    "think good know relay client nostr note key zap sats lightning bitcoin node wallet feed "
    "thread reply post follow coffee morning evening weekend build ship test bug fix memory "
    "cache leak heap browser tab worker protocol event signature pubkey hash network open "
    "source code rust go python wasm compile garden rain sun mountain river city train bike "
    "music book film photo art walk tea bread"
).split()

EMOJI = ("🤙", "⚡", "🔥", "💜", "😂", "🫂", "🌱", "☕", "🚀", "👀", "🙏", "🧡", "🎉", "🐢", "🍕")

# Each item is one "hard" fragment; some notes carry one or two of them.
UNICODE_SAMPLES = (
    "日本語のテキストと漢字の混在、句読点。",
    "中文内容：今天天气很好，我们去公园散步吧。",
    "한국어 문장도 잘 표시되어야 합니다.",
    "مرحبا بالعالم — نص من اليمين إلى اليسار",
    "שלום עולם, זה טקסט מימין לשמאל",
    "नमस्ते दुनिया, यह देवनागरी है",
    "Ελληνικά και Кириллица в одной строке",
    "ZWJ family 👨‍👩‍👧‍👦 and 🧑🏽‍💻 and 🏳️‍🌈",
    "flags 🇯🇵 🇧🇷 🇩🇪 keycap 1️⃣ skin 👍🏿👍🏻",
    "combining: e\u0301 a\u0308 n\u0303 Z\u0335\u0327a\u0336\u0316l\u0337\u0359g\u0334\u031fo",
    "math 𝕳𝖊𝖑𝖑𝖔 𝓌𝑜𝓇𝓁𝒹 and astral 𐍈 𓀀 🀄",
    'escapes: "double quotes", \\backslash\\, tab\there, new\nline',
    "line separator\u2028paragraph separator\u2029end",
    "zero\u200bwidth\u200cjoiners\u200d and BOM\ufeff and nbsp\u00a0here",
    "<script>alert('not html')</script> &amp; <b>bold?</b>",
    "markdown **bold** _italic_ `code` [link](https://example.com) > quote",
)

HASHTAGS = ("nostr", "zapathon", "grownostr", "coffeechain", "plebchain", "memoryleak", "wasm", "photography")

LONG_PARAGRAPH = (
    "Long-form thought in a short-form client: this paragraph repeats so the note is several "
    "thousand characters long, which tests truncation, 'show more' buttons, text layout cost and "
    "how much memory one rendered note keeps alive. "
)


def http_origin(relay_url: str) -> str:
    """``ws://host:port/`` -> ``http://host:port`` (``wss`` -> ``https``)."""
    scheme, sep, rest = relay_url.partition("://")
    host = rest.split("/", 1)[0]
    web = {"ws": "http", "wss": "https"}.get(scheme.lower(), "http")
    return f"{web}{sep or '://'}{host}"


class Text:
    """Builds note bodies and profile JSON from one :class:`Rng` stream."""

    def __init__(self, rng: Rng, relay_url: str) -> None:
        self.rng = rng
        self.media = http_origin(relay_url) + "/media"

    def sentence(self, low: int = 3, high: int = 24) -> str:
        rng = self.rng
        words = [rng.pick(WORDS) for _ in range(rng.between(low, high))]
        text = " ".join(words)
        text = text[:1].upper() + text[1:]
        if rng.chance(0.3):
            text += " " + rng.pick(EMOJI)
        return text + rng.pick((".", ".", "!", "?", ""))

    def note(self, *, unicode: bool = False, long: bool = False) -> tuple[str, list[list[str]]]:
        """A note body and the extra tags it implies (``t`` for hashtags)."""
        rng = self.rng
        parts = [self.sentence() for _ in range(rng.between(1, 3))]
        tags: list[list[str]] = []
        if unicode:
            for _ in range(rng.between(1, 2)):
                parts.insert(rng.below(len(parts) + 1), rng.pick(UNICODE_SAMPLES))
        if long:
            repeats = rng.between(12, 40)
            parts.append("\n\n".join(LONG_PARAGRAPH + self.sentence(10, 30) for _ in range(repeats)))
        roll = rng.below(10)
        if roll == 0:
            parts.append(f"{self.media}/img/{rng.below(500)}.jpg")
        elif roll == 1:
            parts.append(f"https://example.com/{rng.pick(WORDS)}/{rng.below(10_000)}")
        elif roll == 2:
            tag = rng.pick(HASHTAGS)
            parts.append(f"#{tag}")
            tags.append(["t", tag])
        return " ".join(parts), tags

    def profile(self, index: int, version: int) -> str:
        """Kind-0 content: a JSON object with the usual NIP-01/NIP-24 fields."""
        rng = self.rng
        name = self.name(index)
        body: dict[str, str | bool] = {
            "name": name,
            "display_name": name.title() if version == 0 else f"{name.title()} {rng.pick(EMOJI)}",
            "about": self.sentence(4, 30),
            "picture": f"{self.media}/avatar/{index}-{version}.png",
            "banner": f"{self.media}/banner/{index}.jpg",
            "website": f"https://example.com/~{name}",
            "nip05": f"{name}@example.com",
            "lud16": f"{name}@example.com",
        }
        if index % 7 == 3:
            body["about"] = f"{body['about']} {rng.pick(UNICODE_SAMPLES)}"
        if index % 50 == 0:
            body["bot"] = True
        return orjson.dumps(body).decode()

    @staticmethod
    def name(index: int) -> str:
        syllables = ("ka", "lo", "mi", "ra", "ne", "zu", "to", "shi", "ve", "da", "po", "ri")
        first = syllables[index % 12] + syllables[(index // 12) % 12] + syllables[(index // 144) % 12]
        return f"{first}{index}"
