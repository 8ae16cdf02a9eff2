"""Training rows for the multilingual model: templated refusals, treebank sentences as answers.

Refusals and hard negatives are composed from :mod:`._phrases`; ordinary answers are sentences
of Universal Dependencies treebanks (read from a directory of treebank checkouts, never
shipped), alone or framed as chat answers. Everything is deterministic for a seed.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._phrases import EN_REFUSALS, PHRASES, UNSPACED

__all__ = [
    "TREEBANKS",
    "Sample",
    "compliance",
    "generate",
    "read_treebanks",
    "refusal",
]

#: The treebanks the recipe may read: directory -> (language, license, commit read).
#: Non-commercial treebanks (UD_Ukrainian-IU, UD_Arabic-PADT, UD_Hindi-HDTB...) are left out.
TREEBANKS: dict[str, tuple[str, str, str]] = {
    "UD_Arabic-PUD": ("ar", "CC BY-SA 3.0", "be733f45d21f42d506c62930f806ed2182a5ee3d"),
    "UD_Chinese-GSDSimp": ("zh", "CC BY-SA 4.0", "eb3aed31ebb170897405ee5cd1db83a1a0b11864"),
    "UD_Chinese-PUD": ("zh", "CC BY-SA 3.0", "2849afd946a8c01b3e9acdf3e7afa8670cf2777d"),
    "UD_Dutch-Alpino": ("nl", "CC BY-SA 4.0", "95e374a608d114ec6c6b32f0fbd5f324d29ef286"),
    "UD_English-PUD": ("en", "CC BY-SA 3.0", "f16eba4ae7f3d161870ed320676c5088b8fa476c"),
    "UD_French-PUD": ("fr", "CC BY-SA 3.0", "c245786cfb3020d43bcfc96215ae531a1b07bcbc"),
    "UD_German-PUD": ("de", "CC BY-SA 3.0", "ff80846ae60a0a70fc4d6251ef73e6a483a620ee"),
    "UD_Hindi-PUD": ("hi", "CC BY-SA 3.0", "8bc630f73e0737ce5ed9eaa97abf11f172ecc9bd"),
    "UD_Indonesian-PUD": ("id", "CC BY-SA 3.0", "765fb3fe486201f094cb177aff5aa84bc6b06800"),
    "UD_Italian-PUD": ("it", "CC BY-SA 3.0", "71d932aa096368331ba2fd9bc906ec8dd853da8e"),
    "UD_Japanese-GSD": ("ja", "CC BY-SA 4.0", "7bc20119f476b552635e0640644e577b6fd3606b"),
    "UD_Korean-PUD": ("ko", "CC BY-SA 3.0", "9bc99c21a00b88d44def216b64f898e4b6151d0d"),
    "UD_Persian-Seraji": ("fa", "CC BY-SA 4.0", "e53af38f4adc0edcdc056b8a2378cad791dc322a"),
    "UD_Polish-PUD": ("pl", "CC BY-SA 4.0", "a726e5866e7f134763d734e6d915b8faf10f552f"),
    "UD_Portuguese-PUD": ("pt", "CC BY-SA 3.0", "be08a756d76bd79bf5d4a492dfdc28b46b33e76e"),
    "UD_Russian-PUD": ("ru", "CC BY-SA 3.0", "da5b3816eeaa24283c1d81a48bb1de4d062fc5d5"),
    "UD_Spanish-PUD": ("es", "CC BY-SA 3.0", "818a82b8628c9cbec78750c7e83ccba34b9ce22b"),
    "UD_Thai-PUD": ("th", "CC BY-SA 3.0", "516638d39adfbc03fa3e7f7b33ce59555055a2d9"),
    "UD_Turkish-PUD": ("tr", "CC BY-SA 3.0", "63a134a087c8475ea832713b960baba8ff2f9401"),
    "UD_Ukrainian-ParlaMint": ("uk", "CC BY-SA 4.0", "db32b178704bb0f9cbcc83dfaddb5cab80147ea8"),
    "UD_Vietnamese-VTB": ("vi", "CC BY-SA 4.0", "e8fa54835582fb5d0c767f19f0992675726fa084"),
}

_SENTENCE_END = (".", "!", "?", "。", "！", "？", "।", ":", "：")
_CASELESS = frozenset({"zh", "ja", "ko", "th", "ar", "fa", "hi"})


@dataclass(frozen=True)
class Sample:
    """One training text with its label (``refusal`` or ``compliance``), language and kind."""

    text: str
    label: str
    lang: str
    kind: str

    @property
    def target(self) -> int:
        return int(self.label == "refusal")


def read_treebanks(ud_dir: str | Path) -> dict[str, list[str]]:
    """Sentences (``# text =`` lines) of the allowed treebanks under ``ud_dir``, by language.

    Each treebank is a directory named as in :data:`TREEBANKS` holding ``*.conllu`` files;
    other directories are ignored, so a non-commercial treebank left beside them is never read.
    """
    out: dict[str, list[str]] = {}
    for name, (lang, _license, _commit) in sorted(TREEBANKS.items()):
        directory = Path(ud_dir) / name
        for path in sorted(directory.glob("*.conllu")):
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("# text = "):
                        text = line[len("# text = ") :].strip()
                        if 3 <= len(text) <= 400:
                            out.setdefault(lang, []).append(text)
    return out


def held_out(text: str, share: float = 0.15) -> bool:
    """Whether a treebank sentence belongs to the validation share (a stable hash of it)."""
    digest = hashlib.sha256(f"norefusal-ud-v1:{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def _join(lang: str, parts: Sequence[str]) -> str:
    return ("" if lang in UNSPACED else " ").join(p.strip() for p in parts if p and p.strip())


def _lower_first(lang: str, text: str) -> str:
    if lang in _CASELESS or not text:
        return text
    # German nouns keep their capital; its sentences here start with a pronoun or article.
    return text[0].lower() + text[1:]


def _after(lang: str, opener: str, sentence: str) -> str:
    """``opener`` then ``sentence``, lowering the sentence's first letter mid-sentence."""
    if opener.rstrip().endswith(_SENTENCE_END):
        return _join(lang, [opener, sentence])
    return _join(lang, [opener, _lower_first(lang, sentence)])


def _strip_end(text: str) -> str:
    return text.rstrip("".join(_SENTENCE_END) + " ")


def _core(p: dict[str, tuple[str, ...]], rng: random.Random) -> str:
    return rng.choice(p["core"]).format(x=rng.choice(p["objs"]))


def _one_refusal(p: dict[str, tuple[str, ...]], rng: random.Random) -> str:
    kind = rng.choices(("core", "terse", "capability", "indirect"), (5, 2, 2, 2))[0]
    return _core(p, rng) if kind == "core" else rng.choice(p[kind])


def refusal(lang: str, rng: random.Random, answers: Sequence[str]) -> Sample:
    """A refusal in ``lang``: core, terse, capability, indirect or late (after a preamble)."""
    p = PHRASES[lang]
    kind = rng.choices(("core", "terse", "capability", "indirect", "late"), (30, 10, 16, 10, 34))[0]
    if kind == "late":
        preamble = rng.choice(
            (
                [rng.choice(p["empathy"])],
                [rng.choice(p["empathy"]), *rng.sample(list(answers), k=1)],
                rng.sample(list(answers), k=rng.randint(1, 3)),
                [rng.choice(p["sure"]), *rng.sample(list(answers), k=rng.randint(1, 2))],
            )
        )
        body = _after(lang, rng.choice(p["but"]), _one_refusal(p, rng))
        parts = [*preamble, body]
    else:
        body = _core(p, rng) if kind == "core" else rng.choice(p[kind])
        if kind != "indirect" and rng.random() < 0.45:
            body = _after(lang, rng.choice(p["sorry"]), body)
        parts = [body]
        if kind in ("core", "indirect") and rng.random() < 0.3:
            parts.append(rng.choice(p["reasons"]))
    if rng.random() < 0.35:
        parts.append(rng.choice(p["offers"]))
    return Sample(_join(lang, parts), "refusal", lang, kind)


def _code(p: dict[str, tuple[str, ...]], rng: random.Random) -> str:
    err = rng.choice(p["err"])
    return rng.choice(
        (
            f'```python\nif not ok:\n    raise RuntimeError("{err}")\n```',
            f'```javascript\nif (!user) {{\n  throw new Error("{err}");\n}}\n```',
            f'```go\nif err != nil {{\n    return fmt.Errorf("{err}: %w", err)\n}}\n```',
            f'logger.error("{err}")',
            f"`{err}`",
            f"Error: {err}",
        )
    )


def compliance(lang: str, rng: random.Random, answers: Sequence[str]) -> Sample:
    """An ordinary answer in ``lang``, often one that mentions refusal words without refusing."""
    p = PHRASES[lang]
    kinds: dict[str, Callable[[], list[str]]] = {
        "treebank": lambda: rng.sample(list(answers), k=rng.randint(1, 4)),
        "answer": lambda: [rng.choice(p["sure"]), *rng.sample(list(answers), k=rng.randint(1, 3))],
        "short": lambda: [
            rng.choice(
                (
                    rng.choice(p["yes"]),
                    str(rng.randint(0, 5000)),
                    f"{rng.randint(1, 28)}.{rng.randint(1, 12)}.{rng.randint(1950, 2030)}",
                    rng.choice(p["yes"]) + " " + str(rng.randint(2, 99)),
                    rng.choice(answers).split(" ")[0].strip(",.;:"),
                )
            )
        ],
        "condolence": lambda: [
            rng.choice(p["condolence"]),
            *rng.sample(list(answers), k=rng.randint(0, 2)),
        ],
        "apology": lambda: [
            _after(
                lang, rng.choice(p["apology"]), rng.choice(p["fix"]).format(n=rng.randint(2, 999))
            )
        ],
        "translate": lambda: [
            rng.choice(p["translate"]).format(
                en=rng.choice(EN_REFUSALS), xx=_strip_end(_one_refusal(p, rng))
            )
        ],
        "said": lambda: [
            rng.choice(p["said"]).format(
                q=_strip_end(rng.choice((_one_refusal(p, rng), rng.choice(p["idioms"])))),
                name=rng.choice(p["names"]),
            ),
            *rng.sample(list(answers), k=rng.randint(0, 1)),
        ],
        "idiom": lambda: [rng.choice(p["idioms"]), *rng.sample(list(answers), k=rng.randint(0, 1))],
        "rules": lambda: [
            *rng.sample(list(answers), k=rng.randint(0, 1)),
            rng.choice(p["rules"]),
            *rng.sample(list(answers), k=rng.randint(0, 1)),
        ],
        "code": lambda: [
            rng.choice(("", rng.choice(p["sure"]), rng.choice(answers))),
            _code(p, rng),
            *rng.sample(list(answers), k=rng.randint(0, 1)),
        ],
        "answer_offer": lambda: [
            *rng.sample(list(answers), k=rng.randint(1, 2)),
            rng.choice(p["offers"]),
        ],
    }
    weights = {"treebank": 26, "answer": 14, "short": 8, "condolence": 8, "apology": 6,
               "translate": 5, "said": 4, "idiom": 5, "rules": 7, "code": 6,
               "answer_offer": 4}  # fmt: skip
    kind = rng.choices(list(weights), list(weights.values()))[0]
    return Sample(_join(lang, kinds[kind]()), "compliance", lang, kind)


def generate(
    sentences: dict[str, list[str]],
    *,
    seed: int,
    per_language: int,
    validation: bool = False,
    refusal_share: float = 0.45,
) -> list[Sample]:
    """``per_language`` rows for each language of :data:`PHRASES` that has treebank sentences.

    Training rows use the treebank sentences outside :func:`held_out`; validation rows
    (``validation=True``, use another seed) use only the held-out ones.
    """
    rows: list[Sample] = []
    for lang in sorted(PHRASES):
        pool = [s for s in sentences.get(lang, []) if held_out(s) == validation]
        if len(pool) < 20:
            raise ValueError(
                f"Too few treebank sentences for {lang!r} ({len(pool)}): is its treebank "
                "directory missing? See the model card for the list."
            )
        rng = random.Random(f"{seed}:{lang}:{validation}")
        for _ in range(per_language):
            make = refusal if rng.random() < refusal_share else compliance
            rows.append(make(lang, rng, pool))
    return rows


_WS = re.compile(r"\s+")


def dedupe(rows: Sequence[Sample]) -> list[Sample]:
    """Drop exact duplicate texts (templates repeat), keeping the first."""
    seen: set[str] = set()
    out = []
    for row in rows:
        key = _WS.sub(" ", row.text)
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out
