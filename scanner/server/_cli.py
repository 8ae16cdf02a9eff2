"""``norefusal serve``: run the service under uvicorn, with its own graceful shutdown.

    norefusal serve [--host 127.0.0.1] [--port 8000] [--model default] [--threshold T]
                    [--workers 1] [--scan-threads N] [--config serve.yaml]

Everything else (limits, timeouts, tokens) comes from ``NOREFUSAL_SERVE_*`` variables or the
config file; see :class:`~norefusal.server.ServeSettings`. There is deliberately no token flag:
a command line shows in ``ps``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from .._errors import NoRefusalError
from ._app import create_app
from ._gate import DRAIN_KEY
from ._settings import ENV_PREFIX, ServeSettings, load_settings

__all__ = ["DrainingServer", "main", "uvicorn_config", "worker_app"]


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the app when shutdown starts.

    On SIGTERM or SIGINT the app's drain flag is set at once: ``/readyz`` and every new
    request answer 503 (with ``Retry-After``) while in-flight requests finish. After
    ``drain_s`` seconds uvicorn's own graceful shutdown follows: it stops accepting
    connections and waits up to ``graceful_timeout_s`` for the requests in flight.
    """

    def __init__(self, config: uvicorn.Config, *, drain_s: float = 0.0) -> None:
        super().__init__(config)
        self.draining = threading.Event()
        self._drain_s = drain_s
        self._timer: threading.Timer | None = None

    async def startup(self, sockets: list[Any] | None = None) -> None:
        # Lifespan state is copied into every request's scope: the app reads the flag there.
        self.lifespan.state[DRAIN_KEY] = self.draining
        await super().startup(sockets=sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = not self.draining.is_set()
        self.draining.set()
        if first and self._drain_s > 0:
            self._timer = threading.Timer(self._drain_s, super().handle_exit, (sig, frame))
            self._timer.daemon = True
            self._timer.start()
        else:  # no drain period, or a second signal: shut down now
            if self._timer is not None:
                self._timer.cancel()
            super().handle_exit(sig, frame)


def uvicorn_config(app: Any, settings: ServeSettings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration ``norefusal serve`` runs ``app`` with."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=None,  # the process's logging decides (configured by main below)
        access_log=False,  # uvicorn's line holds the raw path and query; the app logs its own
        server_header=False,
        timeout_graceful_shutdown=max(1, round(settings.graceful_timeout_s)),
        **options,
    )
    _silence_uvicorn_access()
    return config


def _silence_uvicorn_access() -> None:
    # uvicorn's access_log=False only strips the logger's handlers: one attached later (by the
    # app's logging setup, or pytest's capture) would log raw paths and queries again.
    logging.getLogger("uvicorn.access").disabled = True


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="norefusal serve",
        description="Serve refusal detection over HTTP (norefusal's /v1 API and LLM Guard API's "
        "output routes). Settings not given here come from NOREFUSAL_SERVE_* environment "
        "variables or --config; bearer tokens only from NOREFUSAL_SERVE_TOKENS or a token file.",
    )
    p.add_argument("--host", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: 8000)")
    p.add_argument("--model", help="preset, Hugging Face id or directory (default: default)")
    p.add_argument("--backend", choices=("onnx", "transformers", "keyword"))
    p.add_argument("--threshold", type=float, help="refusal threshold in (0, 1)")
    p.add_argument("--match", choices=("full", "sentence"))
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--workers", type=int, help="server processes, one model each (default: 1)")
    p.add_argument("--scan-threads", type=int, help="scans at once per process")
    p.add_argument("--queue-size", type=int, help="scans admitted before 503 (default: 256)")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"))
    p.add_argument("--config", type=Path, help="YAML or JSON file of settings")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``norefusal serve``; returns the exit status (0 after a clean shutdown)."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    overrides = {k: v for k, v in vars(args).items() if k != "config"}
    try:
        settings = load_settings(args.config, overrides)
        _configure_logging(settings)
        if settings.workers > 1:
            return _run_workers(settings)
        server = DrainingServer(
            uvicorn_config(create_app(settings), settings), drain_s=settings.drain_s
        )
    except NoRefusalError as exc:
        print(f"norefusal serve: error: {exc}", file=sys.stderr)
        return 1
    server.run()
    return 0 if server.started else 1


def _configure_logging(settings: ServeSettings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def worker_app() -> Any:
    """The app of one worker process (``--workers`` > 1): settings from the environment."""
    settings = ServeSettings()
    _configure_logging(settings)  # a spawned worker starts with no logging configured
    _silence_uvicorn_access()
    return create_app(settings)


def _run_workers(settings: ServeSettings) -> int:
    # Each worker process builds its own app (and model) from the environment, so the
    # settings travel as NOREFUSAL_SERVE_* variables; tokens stay where they were given.
    for name, value in settings.model_dump(exclude={"tokens"}, exclude_none=True).items():
        os.environ[ENV_PREFIX + name.upper()] = str(value)
    config = uvicorn_config("norefusal.server._cli:worker_app", settings, factory=True)
    # uvicorn's supervisor restarts dead workers and shuts them down gracefully on SIGTERM;
    # its workers run uvicorn's own Server, so there is no drain period before the close.
    from uvicorn.supervisors import Multiprocess

    sock = config.bind_socket()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
    return 0
