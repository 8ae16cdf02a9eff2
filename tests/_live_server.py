"""The real service on 127.0.0.1: uvicorn in a thread on a free port, stopped by the test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from norefusal import Backend
from norefusal.server import ServeSettings, create_app
from norefusal.server._cli import DrainingServer, uvicorn_config

STARTUP_S = 60.0  # a loaded shared machine can take long to load a model; the loop is bounded


@dataclass
class LiveServer:
    url: str
    server: DrainingServer
    thread: threading.Thread


@contextmanager
def live_server(
    settings: ServeSettings | None = None, *, scanner: object = None, drain_s: float = 0.0
) -> Iterator[LiveServer]:
    """Run ``create_app(settings, scanner=scanner)`` under the same uvicorn setup as the CLI."""
    settings = settings or ServeSettings(access_log=True)
    app = create_app(settings, scanner=scanner)  # type: ignore[arg-type]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = DrainingServer(uvicorn_config(app, settings), drain_s=drain_s)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("The test server did not start.")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "the test server did not stop"


class GatedBackend(Backend):
    """Scores texts with a marker as a refusal; texts holding ``HANG`` wait for ``release``.

    ``boom`` makes every call raise an exception whose message quotes the text it was given.
    """

    name = "gated"
    batch_size = 1

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.boom = False

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        if self.boom:
            raise ValueError(f"backend exploded on {texts[0]!r}")
        if any("HANG" in t for t in texts):
            self.entered.set()
            self.release.wait(30)
        return np.array([0.9 if "sorry" in t.lower() else 0.1 for t in texts])
