"""Hardening, soak: one million scans through one scanner, resident memory sampled throughout.

The bound: after warm-up, RSS never rises more than 16 MiB above its first sample, which is
less than 17 bytes per scan; a scanner that kept anything per scan (a cache keyed by text, a
list of results) would pass it within the first hundred thousand scans. The keyword backend
keeps this inside CI's budget (about 30 to 60 s); ``python tests/soak.py --model default`` runs
the same soak on the embedded model (see SECURITY.md).
"""

from __future__ import annotations

import threading

from norefusal import NoRefusalScanner
from soak import rss_bytes, soak

MIB = 1024 * 1024


def test_one_million_scans_keep_memory_flat_and_verdicts_stable() -> None:
    threads = threading.active_count()
    scanner = NoRefusalScanner(model="keyword")

    report = soak(scanner, scans=1_000_000, chunk=10_000)

    print(report.summary())  # the figures SECURITY.md quotes (pytest -s shows them)
    assert len(report.samples) == 95
    assert report.growth < 16 * MIB
    assert len(report.refusals_per_chunk) == 1  # every chunk: the same verdicts
    (refusals,) = report.refusals_per_chunk
    assert 0 < refusals < 10_000
    assert threading.active_count() == threads  # scanning starts no threads of its own
    assert rss_bytes() > 0
