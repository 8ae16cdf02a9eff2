"""One scanner shared by many threads and coroutines gives exactly the single-threaded results."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import norefusal._backends._onnx as onnx_module
import pytest
from norefusal import NoRefusalScanner, ScanResult

OUTPUTS = [
    "I'm sorry, but I can't help with that request.",
    "The capital of France is Paris.",
    "As an AI language model, I cannot provide that.",
    "Sure! Here is a recipe for pancakes: mix flour, eggs and milk.",
    "Step 1: open the file. " * 60 + "I must decline to continue.",
    "",
    "I\u2019m not able to assist with that, sorry.",
    "To kill a Python process, send it a signal.",
    "🙅" * 10,
    "Sorry to hear that! Here is how to fix your laptop.",
]
PAIRS = [(f"prompt {i}", OUTPUTS[i % len(OUTPUTS)] + " " * (i % 3)) for i in range(48)]
THREADS = 16
TASKS = 200


def _key(result: ScanResult) -> tuple[Any, ...]:
    return (*result, round(result.score, 6), result.signal, result.model)


def _hammer_threads(scanner: NoRefusalScanner) -> list[list[tuple[Any, ...]]]:
    barrier = threading.Barrier(THREADS)

    def work(offset: int) -> list[tuple[Any, ...]]:
        barrier.wait()  # start together, so the calls really overlap
        rotated = PAIRS[offset:] + PAIRS[:offset]
        got = [_key(scanner.scan(p, o)) for p, o in rotated]
        return got[len(PAIRS) - offset :] + got[: len(PAIRS) - offset]

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(work, range(THREADS)))


@pytest.mark.parametrize("which", ["keyword", "onnx"])
def test_threads_get_the_single_threaded_results(
    which: str, request: pytest.FixtureRequest
) -> None:
    scanner: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    expected = [_key(scanner.scan(p, o)) for p, o in PAIRS]
    assert len({k[3] for k in expected}) > 3  # distinct scores: a mix-up would show
    for got in _hammer_threads(scanner):
        assert got == expected


@pytest.mark.parametrize("which", ["keyword", "onnx"])
async def test_tasks_get_the_single_threaded_results(
    which: str, request: pytest.FixtureRequest
) -> None:
    scanner: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    expected = {i: _key(scanner.scan(*PAIRS[i % len(PAIRS)])) for i in range(TASKS)}

    async def one(i: int) -> tuple[int, tuple[Any, ...]]:
        await asyncio.sleep(0)
        return i, _key(await scanner.ascan(*PAIRS[i % len(PAIRS)]))

    got = dict(await asyncio.gather(*(one(i) for i in range(TASKS))))
    assert got == expected


def test_batches_from_many_threads(onnx_scanner: NoRefusalScanner) -> None:
    expected = [_key(r) for r in onnx_scanner.scan_batch(PAIRS, batch_size=7)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: onnx_scanner.scan_batch(PAIRS, batch_size=7), range(16)))
    for batch in results:
        assert [_key(r) for r in batch] == expected


def test_first_scans_from_many_threads_load_the_model_once(
    tiny_onnx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[int] = []
    original = onnx_module.OnnxBackend.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        loads.append(threading.get_ident())
        original(self, *args, **kwargs)

    monkeypatch.setattr(onnx_module.OnnxBackend, "__init__", counting_init)
    scanner = NoRefusalScanner(model=str(tiny_onnx_dir))
    reference = NoRefusalScanner(model=str(tiny_onnx_dir))
    expected = [_key(reference.scan(p, o)) for p, o in PAIRS]
    loads.clear()
    for got in _hammer_threads(scanner):
        assert got == expected
    assert len(loads) == 1
