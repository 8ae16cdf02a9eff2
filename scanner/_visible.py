"""What a model can read of a text: padding and invisible characters squeezed out, in windows.

A long output is read through a head window and a tail window. Cut from the raw characters,
those windows could be filled by characters a tokenizer drops (whitespace, zero-width and
other format characters, control characters, private-use characters, stray combining marks),
so a refusal followed by 400 newlines would reach the model as no tail at all. The windows are
cut from the *squeezed* text instead, where padding is bounded wherever it sits:

- invisible characters are removed: control characters other than tab, newline and carriage
  return, format characters (zero-width space and joiners, word joiner, BOM, bidi controls,
  soft hyphen, tags...), private-use characters, surrogates, U+FFFD, variation selectors;
- combining marks right after a base character keep their first three; marks after
  whitespace, after an invisible character or at the start have no base and are removed;
- a run of whitespace keeps its first two characters (a paragraph break survives), and the
  text is stripped at both ends.

A BERT-style tokenizer (the embedded default model's) drops all of these itself, so squeezing
changes none of its tokens; a byte-level one (RoBERTa's) sees runs of padding bounded.

Cost: linear character work in C-speed regular expressions, no tokenizing. Only the
characters of the windows are squeezed; a window reads further only over padding, each
character once, and a run of padding is cut short in one pass however long it is.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["is_blank", "squeeze", "visible_windows"]

#: Marks kept on one base character (stacked diacritics beyond this are padding).
MARKS_PER_BASE = 3
#: Characters kept of one run of whitespace.
SPACES_PER_RUN = 2
#: A run of padding this long or longer is cut short before the other passes.
_LONG_RUN = 16
#: Most characters read at once past a window: the text read beyond the padding that hid it.
_MAX_PIECE = 1 << 16


@dataclass(frozen=True)
class _Patterns:
    astral_hidden: dict[int, None]
    far_planes: re.Pattern[str]
    long_run: re.Pattern[str]
    space: re.Pattern[str]
    lead_marks: re.Pattern[str]
    stray_marks: re.Pattern[str]
    invisible: re.Pattern[str]
    mark_run: re.Pattern[str]
    space_run: re.Pattern[str]
    visible: re.Pattern[str]
    spaces: str


def _ranges(codepoints: list[int]) -> str:
    """A character class body for ``codepoints``, as ranges."""
    codepoints = sorted(set(codepoints))
    parts: list[str] = []
    start = prev = codepoints[0]
    for cp in [*codepoints[1:], -1]:
        if cp == prev + 1:
            prev = cp
            continue
        parts.append(re.escape(chr(start)) + ("" if prev == start else "-" + re.escape(chr(prev))))
        start = prev = cp
    return "".join(parts)


@functools.cache
def _patterns() -> _Patterns:
    # Built once, at first use, from Python's Unicode database. The classes hold Basic
    # Multilingual Plane characters only: ``re`` tests such a class with a bitmap, but walks a
    # class with astral ranges range by range, ten times slower per character. Hidden astral
    # characters are removed first instead: plane 1's format characters and combining marks
    # (a rare script loses its marks: a fair price), and planes 14 to 16 whole (tags,
    # variation selectors, private use).
    bmp = list(range(0x10000))
    cats = list(map(unicodedata.category, map(chr, bmp)))
    plane1 = [c for c in range(0x10000, 0x20000) if unicodedata.category(chr(c)) in ("Mn", "Cf")]
    # U+1734 was a nonspacing mark until Unicode 14, and tokenizers built on older tables
    # (the Hugging Face ``tokenizers``' own) still drop it.
    marks = [c for c, cat in zip(bmp, cats, strict=True) if cat == "Mn"] + [0x1734]
    spaces = [c for c, cat in zip(bmp, cats, strict=True) if cat in ("Zs", "Zl", "Zp")]
    spaces += [0x09, 0x0A, 0x0D]
    invisible = [c for c, cat in zip(bmp, cats, strict=True) if cat in ("Cc", "Cf", "Cs", "Co")]
    invisible = [c for c in invisible if c not in spaces] + [0xFFFD]
    inv, mn, ws = _ranges(invisible), _ranges(marks), _ranges(spaces)
    # Only ``long_run`` matches often in padding, once per run however long; the passes with
    # a Python callable match rarely in ordinary text, and after ``long_run`` the text they
    # read holds at most ``_LONG_RUN + 2`` characters of any run.
    return _Patterns(
        astral_hidden=dict.fromkeys(plane1),
        far_planes=re.compile("[\U000e0000-\U0010ffff]+"),
        long_run=re.compile(f"[{inv}{mn}{ws}]{{{_LONG_RUN},}}"),
        space=re.compile(f"[{ws}]"),
        lead_marks=re.compile(f"[{mn}]+"),
        stray_marks=re.compile(f"[{inv}{ws}][{mn}]+"),
        invisible=re.compile(f"[{inv}]+"),
        mark_run=re.compile(f"[{mn}]{{{MARKS_PER_BASE + 1},}}"),
        space_run=re.compile(f"[{ws}]{{{SPACES_PER_RUN + 1},}}"),
        visible=re.compile(f"[^{inv}{mn}{ws}\U00010000-\U0010ffff]"),
        spaces="".join(map(chr, spaces)),
    )


def _cut_run(match: re.Match[str]) -> str:
    # What squeezing keeps of a run of padding is the marks it starts with (three at most)
    # and its first two whitespace characters: its first ``_LONG_RUN`` characters and the
    # whitespace that completes those two squeeze the same, so the rest is never read again.
    text, start, end = match.string, match.start(), match.end()
    kept = text[start : start + _LONG_RUN]
    space = _patterns().space
    missing = SPACES_PER_RUN - len(space.findall(kept))
    pos = start + _LONG_RUN
    extra: list[str] = []
    while missing > 0 and (found := space.search(text, pos, end)) is not None:
        extra.append(found.group())
        pos, missing = found.end(), missing - 1
    return kept + "".join(extra)


def _shorten(text: str) -> str:
    """Remove hidden astral characters and cut runs of padding short; the heavy pass.

    Squeezing ``_shorten(a) + _shorten(b)`` gives ``squeeze(a + b)``, so a text can be
    shortened piece by piece, each character once.
    """
    p = _patterns()
    # Astral characters take two UTF-16 units: measuring the encoding finds them five times
    # faster than a regular expression (it is a copy for text without them).
    if not text.isascii() and len(text.encode("utf-16-le", "surrogatepass")) > 2 * len(text):
        text = p.far_planes.sub("", text.translate(p.astral_hidden))
    return p.long_run.sub(_cut_run, text)


def _finish(text: str) -> str:
    """The squeezing passes after :func:`_shorten`."""
    p = _patterns()
    if lead := p.lead_marks.match(text):
        text = text[lead.end() :]
    text = p.stray_marks.sub(lambda m: m.group()[0], text)
    text = p.invisible.sub("", text)
    text = p.mark_run.sub(lambda m: m.group()[:MARKS_PER_BASE], text)
    text = p.space_run.sub(lambda m: m.group()[:SPACES_PER_RUN], text)
    return text.strip(p.spaces)


def squeeze(text: str) -> str:
    """``text`` with invisible characters removed and runs of padding bounded (see above)."""
    return _finish(_shorten(text))


def is_blank(text: str) -> bool:
    """True when ``text`` has no visible character (only whitespace, invisibles, stray marks).

    Stops at the first visible character of the Basic Multilingual Plane: O(1) on an ordinary
    text of any length.
    """
    if _patterns().visible.search(text):
        return False
    return not squeeze(text)


def visible_windows(text: str, *, head: int, tail: int) -> tuple[str, str | None]:
    """The squeezed ``text`` whole, or its first ``head`` and last ``tail`` characters.

    Returns ``(squeeze(text), None)`` when that holds at most ``head + tail`` characters, else
    ``(squeeze(text)[:head], squeeze(text)[-tail:])``, computed from the ends of ``text``
    only: neither window can be filled by padding, wherever the padding sits. Ordinary text
    costs O(head + tail); past padding, each character is read once from each end, in pieces
    of at most 64 K characters, so the text read beyond the padding stays bounded too.
    """
    if head < 0 or tail < 0:
        raise ValueError(f"head and tail must be >= 0, got {head} and {tail}.")
    whole = head + tail
    # The head decides whether the text is long: its squeezed prefix exceeds both windows, or
    # the whole text was read. Squeezing is local, so a prefix squeezes to a prefix of the
    # squeezed text (a suffix to a suffix, give or take marks at its start that lost their
    # base): a run of padding cut at the edge of a piece is stripped there.
    pieces: list[str] = []
    end, size = 0, whole + 64
    while True:
        pieces.append(_shorten(text[end : end + size]))
        end, size = end + size, min(size * 2, _MAX_PIECE)
        first = _finish("".join(pieces))
        if end >= len(text):
            if len(first) <= whole:
                return first, None
            return first[:head], first[len(first) - tail :]
        if len(first) > whole:
            break
    pieces = []
    start, size = len(text), tail + 64
    while True:
        pieces.append(_shorten(text[max(0, start - size) : start]))
        start, size = start - size, min(size * 2, _MAX_PIECE)
        last = _finish("".join(reversed(pieces)))
        if len(last) >= tail or start <= 0:
            return first[:head], last[len(last) - tail :]
