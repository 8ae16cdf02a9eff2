"""Soak run: many scans through one scanner, with the process's resident memory sampled.

    python tests/soak.py                                  # 1,000,000 scans, keyword backend
    python tests/soak.py --model default --scans 200000   # the embedded model (minutes)

Every chunk of scans uses new texts (so a cache keyed by text would show as growth); the
refusals found per chunk are reported too (on the keyword backend they must not vary). Memory
is sampled after each chunk; the figures compare the samples after warm-up with the first one.
CI runs a 1,000,000-scan keyword soak through :func:`soak` (tests/test_hardening_soak.py);
SECURITY.md documents the longer run.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
from dataclasses import dataclass, field

from norefusal import NoRefusalScanner

__all__ = ["SoakReport", "rss_bytes", "soak"]

#: Outputs cycled through, with a per-scan suffix that makes every text new.
OUTPUTS = (
    "I'm sorry, but I can't help with that request.",
    "The capital of France is Paris.",
    "Sure! Step 1: preheat the oven. Step 2: mix the flour and eggs.",
    "As an AI language model, I cannot provide that information.",
    "   ",
    "Here is the summary you asked for: revenue grew 4% in the quarter.",
    "I\u2019m not able to assist with that, sorry.",
    "Sorry to hear that! Here is how to reset your router.",
)


def rss_bytes() -> int:
    """The process's resident set size now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


@dataclass
class SoakReport:
    """What a soak run measured."""

    scans: int
    seconds: float
    warmup_rss: int
    samples: list[int] = field(default_factory=list)
    refusals_per_chunk: set[int] = field(default_factory=set)

    @property
    def growth(self) -> int:
        """Largest RSS above the post-warm-up sample, in bytes (0 if it never rose)."""
        return max(0, max(self.samples, default=self.warmup_rss) - self.warmup_rss)

    def summary(self) -> str:
        mb = 1024 * 1024
        return (
            f"{self.scans:,} scans in {self.seconds:.1f} s ({self.scans / self.seconds:,.0f}/s); "
            f"RSS after warm-up {self.warmup_rss / mb:.1f} MiB, max {max(self.samples) / mb:.1f} "
            f"MiB, growth {self.growth / mb:.2f} MiB over {len(self.samples)} samples; "
            f"refusals per chunk {sorted(self.refusals_per_chunk)}"
        )


def soak(
    scanner: NoRefusalScanner, *, scans: int = 1_000_000, chunk: int = 10_000, warmup: int = 5
) -> SoakReport:
    """Run ``scans`` scans through ``scanner.scan_batch`` in chunks, sampling RSS per chunk.

    The first ``warmup`` chunks let the allocator and the model settle; the RSS after them is
    the baseline.
    """
    if scans % chunk or scans // chunk <= warmup:
        raise ValueError("scans must be a multiple of chunk, with more chunks than warmup.")
    started = time.perf_counter()
    report = SoakReport(scans=scans, seconds=0.0, warmup_rss=0)
    for n in range(scans // chunk):
        base = n * chunk
        pairs = [
            (f"request {base + i}", f"{OUTPUTS[i % len(OUTPUTS)]} ({base + i})")
            for i in range(chunk)
        ]
        results = scanner.scan_batch(pairs)
        report.refusals_per_chunk.add(sum(r.is_refusal for r in results))
        del pairs, results
        if n == warmup - 1:
            gc.collect()
            report.warmup_rss = rss_bytes()
        elif n >= warmup:
            report.samples.append(rss_bytes())
    report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="keyword", help="preset or model directory")
    parser.add_argument("--scans", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument(
        "--max-growth-mib", type=float, default=32.0, help="fail above this RSS growth"
    )
    args = parser.parse_args(argv)
    scanner = NoRefusalScanner(model=args.model)
    report = soak(scanner, scans=args.scans, chunk=args.chunk)
    print(f"model {scanner.model_name!r}: {report.summary()}")
    ok = report.growth <= args.max_growth_mib * 1024 * 1024
    print("OK" if ok else f"FAILED: RSS grew more than {args.max_growth_mib} MiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
