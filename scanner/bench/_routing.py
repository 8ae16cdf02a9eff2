"""What routing by language costs: the default scanner against its English model alone, one run.

``python -m norefusal.bench._routing [--data ../shared/data] [--rounds 5]`` scans the same
English answers with both scanners, interleaved (A, B, B, A...) so that a change of load on the
machine hits both alike, and prints the p50 of each and their ratio (issue 17's target: the
routed scanner within 1.5x of the English model alone on English text), the p50 of the
multilingual path on text in other languages, and the size of the embedded models.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from .._jsonl import iter_objects
from .._presets import DEFAULT_MODEL_DIR, MULTILINGUAL_MODEL_DIR
from .._scanner import NoRefusalScanner

__all__ = ["main"]

_FALLBACK_ENGLISH = (
    "I'm sorry, but I can't help with that request.",
    "The capital of Australia is Canberra; it became the seat of government in 1927.",
    "Here is a simple recipe: whisk two eggs, add milk and flour, and fry thin pancakes.",
    "To reverse a list in Python, use `items[::-1]` or `items.reverse()` to do it in place.",
)
_OTHER = (
    "Lo siento, pero no puedo ayudarte con esa solicitud.",
    "Der Zug fährt um acht Uhr ab und ist gegen Mittag in Köln.",
    "申し訳ありませんが、そのご依頼にはお応えできません。",
    "Поезд отправляется в восемь утра с Ленинградского вокзала.",
)


def _english(data: Path | None, n: int) -> list[str]:
    path = data / "mtbench_answers.jsonl" if data else None
    if path is None or not path.is_file():
        return list(_FALLBACK_ENGLISH) * (n // len(_FALLBACK_ENGLISH))
    texts = [str(row["response"]) for _, row in iter_objects(path)]
    return texts[:: max(1, len(texts) // n)][:n]


def _times(scanner: NoRefusalScanner, texts: Sequence[str]) -> list[float]:
    out = []
    for text in texts:
        start = time.perf_counter()
        scanner.scan("", text)
        out.append(time.perf_counter() - start)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m norefusal.bench._routing")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    routed = NoRefusalScanner()
    english_only = NoRefusalScanner(model=DEFAULT_MODEL_DIR)
    texts = _english(args.data, args.texts)
    for scanner in (routed, english_only):  # load and warm both before timing
        scanner.scan_batch([("", t) for t in texts[:8] + list(_OTHER)])
    timed: dict[str, list[float]] = {"routed": [], "english_only": []}
    for r in range(args.rounds):
        pair = [("routed", routed), ("english_only", english_only)]
        for name, scanner in pair if r % 2 == 0 else pair[::-1]:
            timed[name] += _times(scanner, texts)
    p50 = {k: statistics.median(v) * 1000 for k, v in timed.items()}
    other = statistics.median(_times(routed, list(_OTHER) * 25)) * 1000
    size = {
        d.name: sum(p.stat().st_size for p in d.iterdir() if p.is_file())
        for d in (DEFAULT_MODEL_DIR, MULTILINGUAL_MODEL_DIR)
        if d.is_dir()
    }
    report = {
        "english_texts": len(texts),
        "rounds": args.rounds,
        "p50_ms_routed": round(p50["routed"], 3),
        "p50_ms_english_only": round(p50["english_only"], 3),
        "ratio": round(p50["routed"] / p50["english_only"], 3),
        "target_ratio": 1.5,
        "p50_ms_other_languages": round(other, 3),
        "model_bytes": size,
        "model_mb_total": round(sum(size.values()) / 2**20, 1),
    }
    print(json.dumps(report, indent=2))
    return 0 if report["ratio"] <= 1.5 else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
