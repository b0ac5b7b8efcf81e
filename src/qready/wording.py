"""Small pieces of English that messages share: articles, and shortening without cutting a word."""

from __future__ import annotations

import re

__all__ = ["a", "counted", "shorten"]


def a(noun: str) -> str:
    """``an int``, ``a Tensor``, ``an OrderedDict``: the article a type name takes."""
    return f"{'an' if noun[:1].lower() in 'aeio' else 'a'} {noun}"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 module``, ``3 modules``, ``0 modules``: a count and its noun in the number it takes."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def shorten(text: str, limit: int = 240) -> str:
    """``text`` within ``limit`` characters: whole sentences where they fit, else whole words and "...".

    Never ends inside a word or inside an open backtick (``(e.g. for `lis...``).
    """
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    kept = ""
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):  # not after "e.g." mid-sentence
        if len(kept) + len(sentence) + 1 > limit:
            break
        kept = f"{kept} {sentence}".strip()
    if kept:
        return kept
    words = text[: limit - 4].rsplit(" ", 1)[0]
    if words.count("`") % 2:  # do not leave a code span open
        words = words[: words.rfind("`")].rstrip()
    if words.count("(") > words.count(")"):  # nor a parenthesis
        words = words[: words.rfind("(")].rstrip()
    return words.rstrip(" ,;:(") + " ..."
