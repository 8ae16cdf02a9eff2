"""A small, bounded pool of daemon threads that runs scans a caller can stop waiting for.

A Python thread cannot be killed, so a backend call that hangs keeps its thread. The pool
bounds the damage: at most ``MAX_WORKERS`` threads exist for the whole process, a caller
waits at most its ``timeout_s`` and then cancels its task if it has not started, so neither
threads nor queued tasks pile up. The threads are daemons, so a hung scan never stops the
interpreter from exiting (``concurrent.futures.ThreadPoolExecutor`` joins its threads at exit).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["MAX_WORKERS", "submit"]

T = TypeVar("T")

#: Threads shared by every Guard in the process.
MAX_WORKERS = min(16, max(4, (os.cpu_count() or 1) * 2))

_Task = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...]]


class _Pool:
    def __init__(self, max_workers: int) -> None:
        self._max = max_workers
        self._queue: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, fn, args))
        with self._lock:
            # More queued tasks than idle threads: start one more, up to the bound.
            if self._queue.qsize() > self._idle and self._threads < self._max:
                self._threads += 1
                name = f"norefusal-scan-{self._threads}"
                threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            future, fn, args = self._queue.get()
            with self._lock:
                self._idle -= 1
            if not future.set_running_or_notify_cancel():
                continue  # the caller gave up before the task started
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller, who decides
                future.set_exception(exc)
            del future, fn, args


_POOL = _Pool(MAX_WORKERS)


def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``fn(*args)`` on the shared pool; cancel the future to drop it if not yet started."""
    return _POOL.submit(fn, *args)
