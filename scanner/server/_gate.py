"""The ASGI layer around every request: drain, body limit, metrics, access log, last resort.

Pure ASGI rather than ``BaseHTTPMiddleware`` (which costs a task and a stream per request):

- while the server drains (after SIGTERM) every request but the probes gets 503;
- a body over the limit gets 413, by its Content-Length before a byte is read, or as soon as
  a chunked body passes the limit;
- each request is counted by route and status, timed, and logged as one line naming the
  route template, never the raw path, query or body;
- an exception that escapes the app becomes a 500 with the one error shape and a log line
  holding its type only: a traceback could quote request text.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Collection

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._metrics import ServiceMetrics

__all__ = ["DRAIN_KEY", "PROBES", "BodyTooLarge", "Gate", "error_bytes", "is_draining"]

logger = logging.getLogger("norefusal.server")
access_logger = logging.getLogger("norefusal.server.access")

#: The lifespan-state key under which the server puts the ``threading.Event`` it sets on SIGTERM.
DRAIN_KEY = "norefusal.draining"
#: Routes answered while draining: the orchestrator must still see the process.
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


def error_bytes(message: str, details: object = None) -> bytes:
    return json.dumps({"message": message, "details": details}).encode()


def is_draining(scope: Scope) -> bool:
    event = scope.get("state", {}).get(DRAIN_KEY)
    return isinstance(event, threading.Event) and event.is_set()


async def _send_error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = error_bytes(message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Gate:
    """Wraps the app; see the module docstring. ``routes`` are the paths used as labels."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        max_body_bytes: int,
        routes: Collection[str],
        retry_after_s: int,
        access_log: bool,
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._limit = max_body_bytes
        self._routes = frozenset(routes)
        self._retry_after = str(retry_after_s).encode()
        self._access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        route = path if path in self._routes else "unmatched"
        status = 500
        response_started = False

        async def send_status(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)

        try:
            if is_draining(scope) and path not in PROBES:
                headers = [(b"retry-after", self._retry_after), (b"connection", b"close")]
                await _send_error(send_status, 503, "The server is shutting down.", headers)
            elif (length := self._content_length(scope)) is not None and length > self._limit:
                await _send_error(
                    send_status, 413, f"The request body is larger than {self._limit} bytes."
                )
            elif length == -1:
                await _send_error(send_status, 400, "The Content-Length header is invalid.")
            else:
                await self.app(scope, self._limited(receive), send_status)
        except Exception as exc:
            self._metrics.errors.labels("internal").inc()
            logger.error("%s %s failed with %s.", scope["method"], route, type(exc).__name__)
            if not response_started:
                await _send_error(send_status, 500, "Internal server error.")
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.requests.labels(route, str(status)).inc()
            self._metrics.latency.labels(route).observe(elapsed)
            if self._access_log:
                client = scope.get("client")
                access_logger.info(
                    '%s - "%s %s" %d %.1fms',
                    f"{client[0]}:{client[1]}" if client else "-",
                    scope["method"],
                    route,
                    status,
                    elapsed * 1000.0,
                )

    @staticmethod
    def _content_length(scope: Scope) -> int | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return int(value) if value.isdigit() else -1
        return None

    def _limited(self, receive: Receive) -> Receive:
        limit = self._limit
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_limited
