"""The scanning core of the service: a bounded queue in front of a fixed pool of scan threads.

No coalescing: each request's pairs go to :meth:`NoRefusalScanner.scan_batch` as they came,
exactly as an in-process call would, so a verdict never depends on what else was in flight
(int8 ONNX scores depend on the batch; see ``_backends/_onnx.py``). Admission is counted from
submission until the scan thread is done, so a hung backend call keeps occupying its place and
the queue fills up into 503s instead of piling up threads or work.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from .._result import ScanResult
from .._scanner import NoRefusalScanner

__all__ = ["Overloaded", "ScanFailed", "ScanService", "ScanTimedOut"]

Pairs = Sequence[tuple[str, str]]


class Overloaded(Exception):
    """The queue is full: answer 503 with Retry-After."""


class ScanTimedOut(Exception):
    """The scan did not finish within the deadline."""


class ScanFailed(Exception):
    """The scanner raised; ``kind`` is the exception's type name (never its message)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


_Task = tuple["Future[Any]", Callable[[], Any]]


class _Threads:
    """``n`` daemon threads draining one queue.

    Daemons, unlike ``ThreadPoolExecutor``'s, never hold the process at exit: a scan that
    hangs must not turn a shutdown into a hang.
    """

    def __init__(self, n: int) -> None:
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"norefusal-serve-{i}", daemon=True)
            for i in range(n)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((future, fn))
        return future

    def _work(self) -> None:
        while (task := self._queue.get()) is not None:
            future, fn = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # delivered to the waiting request
                future.set_exception(exc)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


class ScanService:
    """Runs scans off the event loop with admission control and a deadline.

    Args:
        scanner: the scanner (loaded by :meth:`start`).
        threads: scans run at once.
        queue_size: scans admitted at once (running or waiting); beyond it :class:`Overloaded`.
        timeout_s: how long a request waits for its scan.
        on_depth: called with the number of admitted scans whenever it changes (a gauge).
    """

    def __init__(
        self,
        scanner: NoRefusalScanner,
        *,
        threads: int,
        queue_size: int,
        timeout_s: float,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self.scanner = scanner
        self._n_threads = threads
        self._queue_size = queue_size
        self._timeout_s = timeout_s
        self._on_depth = on_depth or (lambda depth: None)
        self._lock = threading.Lock()
        self._admitted = 0
        self._threads: _Threads | None = None
        self.ready = False

    @property
    def depth(self) -> int:
        """Scans admitted and not yet finished (running, waiting, or hung)."""
        return self._admitted

    async def start(self) -> None:
        """Start the scan threads, load the model and pass one warm-up scan; then ready."""
        self._threads = _Threads(self._n_threads)
        await asyncio.to_thread(self.scanner.load)
        warm = await asyncio.to_thread(self.scanner.scan, "", "Warm-up: is the model loaded?")
        self.ready = isinstance(warm, ScanResult)

    def close(self) -> None:
        self.ready = False
        if self._threads is not None:
            self._threads.close()

    async def scan(self, pairs: Pairs) -> list[ScanResult]:
        """Scan ``pairs`` on a scan thread, as ``scanner.scan_batch(pairs)`` would in process.

        Raises:
            Overloaded: the queue is full.
            ScanTimedOut: no result within ``timeout_s``.
            ScanFailed: the scanner raised.
        """
        threads = self._threads
        if threads is None:
            raise RuntimeError("ScanService.start() was not awaited.")
        with self._lock:
            if self._admitted >= self._queue_size:
                raise Overloaded
            self._admitted += 1
            depth = self._admitted
        self._on_depth(depth)
        future = threads.submit(lambda: self.scanner.scan_batch(pairs))
        future.add_done_callback(self._release)
        try:
            results: list[ScanResult] = await asyncio.wait_for(
                asyncio.wrap_future(future), self._timeout_s
            )
        except asyncio.TimeoutError:
            raise ScanTimedOut from None
        except Exception as exc:
            raise ScanFailed(type(exc).__name__) from exc
        return results

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self._admitted -= 1
            depth = self._admitted
        self._on_depth(depth)
