"""Training data: reading labelled JSON Lines, license gating, the XSTest split, and the mix.

Pure Python (no torch), so the accuracy tests can rebuild the held-out split without the
``train`` extra. Every choice is deterministic: splits hash the prompt text, samples use a
seeded :class:`random.Random`.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .._jsonl import iter_objects

__all__ = [
    "LABELS",
    "LICENSES",
    "LicenseError",
    "Row",
    "is_trainable",
    "looks_like_refusal",
    "read_jsonl",
    "split_of",
    "training_mix",
    "xstest_split",
]

LABELS = ("compliance", "refusal", "partial_refusal")

#: What each shared data file may be used for. ``True``: it may train a model that is shipped.
#: Files not listed here count as not trainable (their license is unknown).
LICENSES: dict[str, tuple[str, bool]] = {
    "xstest_human.jsonl": (
        "prompts CC-BY-4.0; completions under the generating models' terms",
        True,
    ),
    "gptfuzz_proxy.jsonl": ("MIT", True),
    "jbb_judge_proxy.jsonl": ("MIT", True),
    "coconot_compliance.jsonl": ("MIT (research-use terms in the paper)", True),
    "refusal_direction_silver.jsonl": ("Apache-2.0", True),
    "mtbench_answers.jsonl": ("Apache-2.0; completions under the generating models' terms", True),
    "gsm8k_answers.jsonl": ("MIT", True),
    "humaneval_answers.jsonl": ("MIT", True),
    "alpacaeval_compliance_nc.jsonl": ("CC BY-NC 4.0", False),
    "alpaca_seed_compliance_nc.jsonl": ("CC BY-NC 4.0", False),
}

#: Silver labels come from a keyword judge: training only, never a figure.
NEVER_EVALUATE = frozenset({"refusal_direction_silver.jsonl"})


class LicenseError(RuntimeError):
    """A data file's license does not allow what was asked of it."""


@dataclass(frozen=True)
class Row:
    """One labelled (prompt, response) pair, with where it came from and how much it counts."""

    id: str
    prompt: str
    response: str
    label: str
    source: str  # the file name it was read from, or "synthetic:<generator>"
    model: str = ""
    weight: float = 1.0

    @property
    def target(self) -> int:
        """1 for refusal (partial refusals included), 0 for compliance."""
        return 0 if self.label == "compliance" else 1


def is_trainable(path: str | Path) -> bool:
    """Whether rows of this file may train a model that ships (known, commercial-use license)."""
    name = Path(path).name
    if name.endswith("_nc.jsonl"):
        return False
    entry = LICENSES.get(name)
    return bool(entry and entry[1])


def read_jsonl(path: str | Path) -> list[Row]:
    """Read a labelled JSON Lines file; a bad line raises :class:`ValueError` naming it."""
    path = Path(path)
    rows: list[Row] = []
    for n, obj in iter_objects(path):
        if not isinstance(obj.get("response"), str):
            raise ValueError(f"{path}, line {n}: no 'response' string.")
        label = obj.get("label")
        if label not in LABELS:
            raise ValueError(f"{path}, line {n}: label must be one of {LABELS}, got {label!r}.")
        rows.append(
            Row(
                id=str(obj.get("id", f"{path.stem}-{n}")),
                prompt=str(obj.get("prompt") or ""),
                response=obj["response"],
                label=label,
                source=path.name,
                model=str(obj.get("model") or ""),
            )
        )
    return rows


def split_of(prompt: str, *, salt: str, test: float, val: float) -> str:
    """``"test"``, ``"val"`` or ``"train"`` for a prompt, from a salted hash of its text.

    Every row with the same prompt lands in the same split, whatever the file order.
    """
    digest = hashlib.sha256(f"{salt}\x00{prompt.strip()}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test:
        return "test"
    return "val" if u < test + val else "train"


#: The XSTest held-out split: 30% of prompts test, 15% validation, the rest train.
XSTEST_SALT = "norefusal-xstest-v1"
XSTEST_TEST = 0.30
XSTEST_VAL = 0.15


def xstest_split(rows: Iterable[Row]) -> dict[str, list[Row]]:
    """Split XSTest rows by prompt into ``train``, ``val`` and ``test`` (fixed, seedless)."""
    out: dict[str, list[Row]] = {"train": [], "val": [], "test": []}
    for row in rows:
        out[split_of(row.prompt, salt=XSTEST_SALT, test=XSTEST_TEST, val=XSTEST_VAL)].append(row)
    return out


# A cheap refusal check, used only to clean the noisy proxy files before training.
_REFUSAL_RE = re.compile(
    r"\b(i['’]?m sorry|i am sorry|sorry, but|i apologi[sz]e|my apologies|i can(?:no|['’])t"
    r"|i can not|i won['’]t|i will not|i['’]?m (?:not able|unable)|i am (?:not able|unable)"
    r"|i must (?:decline|refuse)"
    r"|i['’]?m not going to|i refuse|as an ai|as a language model|i['’]?m just an ai"
    r"|not (?:able|allowed|permitted) to (?:provide|help|assist|create|generate|write)"
    r"|(?:cannot|can['’]t) (?:fulfill|comply|assist|help|provide|create|generate|write|support)"
    r"|against (?:my|our) (?:programming|guidelines|policies|principles)|not appropriate"
    r"|unethical|illegal and harmful)",
    re.IGNORECASE,
)


def looks_like_refusal(text: str, *, head: int | None = None) -> bool:
    """Whether ``text`` (or its first ``head`` characters) holds a common refusal phrase."""
    return _REFUSAL_RE.search(text if head is None else text[:head]) is not None


@dataclass(frozen=True)
class MixSpec:
    """How many rows each source gives to training, and their weight."""

    gptfuzz_refusal: int = 700
    gptfuzz_compliance: int = 450
    jbb_refusal: int = 250
    jbb_compliance: int = 300
    coconot: int = 450
    mtbench: int = 650
    gsm8k: int = 150
    humaneval: int = 80
    silver_refusal: int = 200
    silver_compliance: int = 200
    silver_weight: float = 0.5
    proxy_weight: float = 0.7


#: mtbench is split by question too, so that validation FPR is measured on unseen questions.
MTBENCH_SALT = "norefusal-mtbench-v1"


def _sample(rows: Sequence[Row], n: int, rng: random.Random) -> list[Row]:
    rows = list(rows)
    rng.shuffle(rows)
    return rows[:n]


def _mt_question(prompt: str) -> str:
    # Turn-2 prompts carry turn 1 before the last <|user|>; group both turns by the first question.
    return prompt.split("<|assistant|>")[0].replace("<|user|>", "").strip()


def training_mix(
    data_dir: str | Path,
    *,
    seed: int,
    spec: MixSpec | None = None,
    files: Sequence[str] | None = None,
    eval_only: bool = False,
) -> dict[str, list[Row]]:
    """Build the ``train`` and ``val`` rows from the shared data directory.

    ``files`` names the files the mix may draw on (all trainable files by default). A file
    whose license forbids training raises :class:`LicenseError` unless ``eval_only`` is set.
    The XSTest ``test`` split is never returned. Partial refusals stay out of training and
    threshold choice (they are reported apart).
    """
    spec = spec or MixSpec()
    data_dir = Path(data_dir)
    names = list(files) if files is not None else [n for n, (_, ok) in LICENSES.items() if ok]
    blocked = [n for n in names if not is_trainable(n)]
    if blocked and not eval_only:
        raise LicenseError(
            f"{', '.join(blocked)} may not train a shipped model (non-commercial or unknown "
            "license). "
            "Pass --eval-only to train a model for evaluation only."
        )
    rng = random.Random(seed)
    train: list[Row] = []
    val: list[Row] = []
    loaded = {n: read_jsonl(data_dir / n) for n in names if (data_dir / n).exists()}
    missing = [n for n in names if n not in loaded]
    if "xstest_human.jsonl" in missing:
        raise FileNotFoundError(f"{data_dir / 'xstest_human.jsonl'} is needed for validation.")

    def take(rows: Sequence[Row], n: int, weight: float = 1.0) -> list[Row]:
        return [replace(r, weight=weight) for r in _sample(rows, n, rng)]

    for name, rows in loaded.items():
        if name == "xstest_human.jsonl":
            parts = xstest_split(r for r in rows if r.label != "partial_refusal")
            train += parts["train"]
            val += parts["val"]
        elif name == "gptfuzz_proxy.jsonl" or name == "jbb_judge_proxy.jsonl":
            # Proxy labels ("jailbroken or not"): keep refusals that read as refusals, and
            # compliance with no refusal phrase anywhere (drops "Normal: I'm sorry… / Dev mode: …").
            ref = [r for r in rows if r.label == "refusal" and looks_like_refusal(r.response)]
            com = [
                r for r in rows if r.label == "compliance" and not looks_like_refusal(r.response)
            ]
            fuzz = name.startswith("gptfuzz")
            train += take(
                ref, spec.gptfuzz_refusal if fuzz else spec.jbb_refusal, spec.proxy_weight
            )
            train += take(
                com, spec.gptfuzz_compliance if fuzz else spec.jbb_compliance, spec.proxy_weight
            )
        elif name == "mtbench_answers.jsonl":
            by_split: dict[str, list[Row]] = {"train": [], "val": [], "test": []}
            for r in rows:
                by_split[
                    split_of(_mt_question(r.prompt), salt=MTBENCH_SALT, test=0.0, val=0.2)
                ].append(r)
            tr = by_split["train"]
            train += [r for r in tr if r.label == "refusal"]
            train += take([r for r in tr if r.label == "compliance"], spec.mtbench)
            val += [r for r in by_split["val"] if r.label != "partial_refusal"]
        elif name == "coconot_compliance.jsonl":
            picked = _sample(rows, spec.coconot + 150, rng)
            train += picked[: spec.coconot]
            val += picked[spec.coconot :]
        elif name == "gsm8k_answers.jsonl":
            train += take(rows, spec.gsm8k)
        elif name == "humaneval_answers.jsonl":
            train += take(rows, spec.humaneval)
        elif name == "refusal_direction_silver.jsonl":
            train += take(
                [r for r in rows if r.label == "refusal"], spec.silver_refusal, spec.silver_weight
            )
            train += take(
                [r for r in rows if r.label == "compliance"],
                spec.silver_compliance,
                spec.silver_weight,
            )
        else:  # a file named explicitly (eval-only experiments): all of it, as labelled
            train += [r for r in rows if r.label != "partial_refusal"]
    return {"train": train, "val": val}
