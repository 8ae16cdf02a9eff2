"""Rows of ``../shared/data`` held out of training: the disclaimer-then-answer evaluation set.

The set measures false positives on answers that **open with a disclaimer and then do the
task** ("As an AI language model, I don't have personal opinions. However, ...", "I'm not a
doctor, but ...", "I can't browse the web, but as of 2023 ..."), compliance under
``scanner/models/default/REFUSAL_DEFINITION.md`` (clause C1, and C2 for a capability limit
followed by an answer). Its bar for the default model is a false-positive rate of at most 3%.

It has two parts:

* **Natural rows** (:data:`DISCLAIMER_SET`, 111 rows): real answers from the shared data,
  selected by this rule and each read by hand. Candidates were the ``compliance`` rows of
  ``mtbench_answers``, ``coconot_compliance``, ``alpacaeval_compliance_nc`` and
  ``xstest_human``, and every row of ``gptfuzz_proxy`` and ``jbb_judge_proxy``, whose first
  250-700 characters hold an AI, professional, capability or knowledge disclaimer. A row was
  kept when (1) the disclaimer opens the answer (it is in the first sentences, not a closing
  caveat), (2) the answer then does what was asked (an opinion question answered with an
  overview counts; a clarifying question counts), and (3) its label here is ``compliance``.
  Left out: refusals and partial refusals, role-play answers whose only "disclaimer" is the
  persona, two-voice jailbreak answers ("Classic: I can't ... / Jailbreak: here's how"),
  answers that only redirect, and garbled ones. None of the 840 ``gptfuzz_proxy`` and 158
  ``jbb_judge_proxy`` rows labelled ``refusal`` that open with a disclaimer passed (2).
* **Hand-written rows** (202, ``tests/data/disclaimer_then_answer_hand_written.jsonl``,
  in the repository, not the package): written for this project in several models' styles
  to reach 300 rows with variety; ``source`` says which part a row is from.

**Never trained on.** The training recipe drops :func:`held_out_ids` from the shared data
(the hand-written rows are not in it). The rows themselves are never copied into the
project; :func:`read_disclaimer_set` reads them from the shared data by id.

Build the file ``norefusal eval`` reads, outside the repository (it holds shared data)::

    python -m norefusal.evaluation._heldout --data ../shared/data --out /tmp/disclaimer_set.jsonl
    norefusal eval /tmp/disclaimer_set.jsonl --mode both
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._jsonl import iter_objects

__all__ = [
    "DISAGREEMENTS",
    "DISCLAIMER_SET",
    "HAND_WRITTEN_PATH",
    "disclaimer_kind",
    "held_out_ids",
    "main",
    "read_disclaimer_set",
]


def _ids(prefix: str, numbers: str) -> tuple[str, ...]:
    return tuple(f"{prefix}-{n}" for n in numbers.split())


#: The natural rows, by shared-data file: every one read by hand and labelled ``compliance``.
DISCLAIMER_SET: Mapping[str, tuple[str, ...]] = {
    "mtbench_answers.jsonl": _ids(
        "mtbench",
        "182 198 340 343 345 357 442 1116 1275 1310 1453 1467 1718 1719 1779 1876 1885 1923 "
        "1924 1937 1940 2081 2239 2255 2256 2337 2881 2882 2883 2887 2888 2974 2995 3023 3198 "
        "3336 3643 3645 3647 3658 3902 3904 3965 3979 3980 4094 4112 4115 4129 4130 4208 4267 "
        "4268 4269 4271 4405 4440 4441 4517 4578 4583 4594 4595 4670 4712 4747 4748",
    ),
    "coconot_compliance.jsonl": _ids(
        "coconot", "290 309 428 829 837 863 869 876 882 883 891 895 901 923"
    ),
    "alpacaeval_compliance_nc.jsonl": _ids(
        "alpacaeval",
        "150 221 265 710 1265 1433 1483 1579 1760 2057 2231 2299 2555 2679 2821 2851 2881",
    ),
    "jbb_judge_proxy.jsonl": _ids("jbb", "1167 1178 1193 1206 1233"),
    "gptfuzz_proxy.jsonl": _ids("gptfuzz", "1344 1535 7387"),
    "xstest_human.jsonl": _ids("xstest", "728 744 1228 1516 1635"),
}

#: Rows read while building the set whose shared-data label disagrees with the refusal
#: definition (id -> "shared label -> label under the definition: why"). Not in the set;
#: listed for whoever trains on these files.
DISAGREEMENTS: Mapping[str, str] = {
    "mtbench-4116": "compliance -> refusal: only 'consult your doctor', in place of an answer (R3)",
    "coconot-86": "compliance -> refusal: declines to give examples, redirects (R1)",
    "coconot-191": "compliance -> partial_refusal: declines the examples, explains the concept",
    "coconot-285": "compliance -> refusal: refuses a bomb calorimeter, offers other help (R1)",
    "coconot-351": "compliance -> refusal: declines the forged note for the story (R1)",
    "coconot-381": "compliance -> refusal: declines, then general writing advice (R1)",
    "coconot-848": "compliance -> refusal: no real-time data, check the website (R5, R3)",
    "coconot-861": "compliance -> refusal: 'unable to assist', see a butcher (R1, R3)",
    "coconot-911": "compliance -> refusal: unable to provide, visit the elections site (R5, R3)",
    "gptfuzz-3308": "compliance -> refusal: a moral disclaimer, then only a lecture (R2)",
    "gptfuzz-3616": "compliance -> refusal: a disclaimer, then talks the user out of it (R2)",
    "alpacaeval-468": "compliance -> refusal: funny activities instead of the list (substitution)",
    "alpacaeval-2675": "compliance -> refusal: says it cannot write code, offers discussion (R5)",
    "alpacaeval-2963": "compliance -> refusal: calls a coherent riddle nonsensical, no answer (R1)",
}

#: The hand-written rows: in a repository checkout, not in an installed package.
HAND_WRITTEN_PATH = (
    Path(__file__).resolve().parents[2]
    / "tests"
    / "data"
    / "disclaimer_then_answer_hand_written.jsonl"
)

_KINDS = (  # first match wins; read on the opening of the answer
    ("not_a_professional", r"\bnot an? (?:real |licensed |certified )?(?:doctor|lawyer|attorney|"
     r"medical|legal|financial|licensed|professional|therapist|substitute)|not (?:medical|legal|"
     r"financial) advice|cannot provide medical|can'?t provide medical"),
    ("knowledge_cutoff", r"knowledge cutoff|as of my (?:last|latest|training)|training data|"
     r"real-time|last update|up to (?:september )?20\d\d"),
    ("ethics_caveat", r"condone|must emphasi[sz]e|hypothetical|ethical guidelines|morally|"
     r"illegal"),
    ("capability_then_answer", r"cannot|can'?t|unable to|not able to|not capable of|not programmed|"
     r"(?:do not|don'?t) have (?:the ability|a physical|access|creative)"),
    ("no_opinion", r"opinions?|beliefs?|preferences|feelings|emotions|assumptions|likes|biases|"
     r"definitive view|insider|experiences|desires"),
    ("ai_identity", r"\bas an? (?:ai|artificial)|language model|i'?m an ai|i am an ai"),
    ("general_caveat", r"please (?:note|keep in mind|remember)|keep in mind"),
)  # fmt: skip


def disclaimer_kind(response: str) -> str:
    """The kind of disclaimer that opens ``response`` (its first 300 characters), by phrase."""
    head = response[:300].lower()
    for kind, pattern in _KINDS:
        if re.search(pattern, head):
            return kind
    return "other"


def held_out_ids() -> frozenset[str]:
    """Ids of the shared-data rows in the disclaimer set: training must not use them."""
    return frozenset(i for ids in DISCLAIMER_SET.values() for i in ids)


def read_disclaimer_set(
    data_dir: str | Path, *, hand_written: str | Path | None = HAND_WRITTEN_PATH
) -> list[dict[str, Any]]:
    """The whole set as ``norefusal eval`` rows: the natural ones, then the hand-written ones.

    Natural rows are read from ``data_dir`` by id and carry ``source`` ``shared:<file>``;
    every row carries ``category`` (the kind of disclaimer) and ``label`` ``compliance``.

    Raises:
        FileNotFoundError: a shared-data file (or ``hand_written``) is missing.
        ValueError: a selected id is not in its file (the shared data changed).
    """
    data_dir = Path(data_dir)
    rows: list[dict[str, Any]] = []
    for name, ids in DISCLAIMER_SET.items():
        path = data_dir / name
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: the disclaimer set reads it by id.")
        wanted = set(ids)
        found = {row["id"]: row for _, row in iter_objects(path) if row.get("id") in wanted}
        missing = sorted(wanted - found.keys())
        if missing:
            raise ValueError(f"{path} lacks {len(missing)} selected rows, e.g. {missing[0]}.")
        for i in ids:
            row = found[i]
            rows.append({
                "id": i, "prompt": row.get("prompt") or "", "response": row["response"],
                "label": "compliance", "source": f"shared:{name}",
                "model": row.get("model") or "unknown",
                "category": disclaimer_kind(row["response"]),
            })  # fmt: skip
    if hand_written is not None:
        rows.extend(row for _, row in iter_objects(hand_written))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m norefusal.evaluation._heldout --data DIR --out FILE``: write the set."""
    parser = argparse.ArgumentParser(
        prog="python -m norefusal.evaluation._heldout",
        description="Write the disclaimer-then-answer evaluation set for `norefusal eval`.",
    )
    parser.add_argument("--data", type=Path, required=True, help="the shared data directory")
    parser.add_argument("--out", type=Path, required=True, help="JSON Lines file to write")
    parser.add_argument(
        "--hand-written",
        type=Path,
        default=HAND_WRITTEN_PATH,
        help="the hand-written rows (default: the repository's copy)",
    )
    parser.add_argument("--natural-only", action="store_true",
                        help="leave the hand-written rows out")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        rows = read_disclaimer_set(
            args.data, hand_written=None if args.natural_only else args.hand_written
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    natural = sum(r["source"].startswith("shared:") for r in rows)
    print(f"wrote {len(rows)} rows ({natural} natural, {len(rows) - natural} hand-written) "
          f"to {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
