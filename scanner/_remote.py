"""RemoteScanner: the scanner's API over HTTP, against ``norefusal serve`` (the ``client`` extra).

    >>> from norefusal import RemoteScanner
    >>> scanner = RemoteScanner("http://guard:8000", token=os.environ["NOREFUSAL_TOKEN"])
    >>> guard = Guard("strict", scanner=scanner)        # policies and adapters run unchanged

The decisions (what to send, whether an answer is a result, a retry or an error) are pure
functions shared by the sync and async methods, which only do the I/O.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ._errors import ConfigurationError, MissingDependencyError, ScannerError
from ._result import ScanResult
from ._stream import StreamMonitor
from ._text import check_text

if TYPE_CHECKING:
    import httpx2
    from typing_extensions import Self

__all__ = ["RemoteScanner"]

_RETRY_STATUS = frozenset({503})


@dataclass(frozen=True)
class _Retry:
    delay_s: float


def _backoff(attempt: int, base_s: float, cap_s: float, retry_after: str | None) -> float:
    """Exponential backoff with jitter; a server's Retry-After (seconds) wins, up to the cap."""
    if retry_after is not None and retry_after.strip().isdigit():
        return min(float(retry_after), cap_s)
    delay: float = min(cap_s, base_s * 2.0**attempt)
    return delay / 2 + random.uniform(0, delay / 2)


def _payload(pairs: Sequence[tuple[str, str]]) -> bytes:
    # ASCII-escaped JSON: a lone surrogate (which any str may hold) travels as \\udXXX instead
    # of failing to encode as UTF-8.
    body = {"pairs": [{"prompt": p, "output": o} for p, o in pairs]}
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _result(output: str, data: object) -> ScanResult:
    if not isinstance(data, Mapping):
        raise ScannerError("The norefusal service returned a malformed result.")
    try:
        result = ScanResult(
            output,
            score=float(data["score"]),
            threshold=float(data["threshold"]),
            signal=str(data["signal"]),
            model=str(data["model"]),
            is_refusal=bool(data["is_refusal"]),
            detail=data.get("detail"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ScannerError(
            f"The norefusal service returned a malformed result ({type(exc).__name__})."
        ) from None
    if result.valid is not data.get("valid") or result.risk != data.get("risk"):
        raise ScannerError("The norefusal service returned an inconsistent result.")
    return result


class RemoteScanner:
    """A scanner whose model runs in a ``norefusal serve`` process; same API, same verdicts.

    ``scan``, ``ascan``, ``scan_batch`` and ``stream`` behave as
    :class:`~norefusal.NoRefusalScanner`'s, and give bit-for-bit the verdicts the service's
    scanner gives in process. Safe to share between threads; ``ascan`` keeps one connection
    pool per event loop.

    A call waits at most ``timeout_s`` per attempt. A 503 (queue full, or a replica shutting
    down) and a failed or dropped connection are retried up to ``retries`` times, after an
    exponential backoff (or the server's ``Retry-After``), up to ``max_backoff_s``. Scans
    change nothing on the server, so a retry is always safe. Anything else (a timeout, a
    rejected token, an invalid request, a server error) raises :class:`~norefusal.ScannerError`
    at once, so a :class:`~norefusal.policies.Guard`'s ``on_error`` decides. A wrong argument
    type raises :class:`TypeError` before any request.

    Args:
        url: the service's base URL, e.g. ``"http://guard:8000"``.
        token: the bearer token, if the service requires one.
        timeout_s: seconds per attempt (connect, send, wait, read).
        retries: extra attempts after a 503 or a connection failure.
        backoff_s: first backoff; doubled per attempt.
        max_backoff_s: cap on one backoff (and on a Retry-After).
        max_batch: pairs per request in :meth:`scan_batch` (the server's limit is 64 unless
            configured otherwise; :meth:`load` reads it).
        transport: an ``httpx2`` transport for the sync client (tests: ``httpx2.MockTransport``).
        async_transport: the same for ``ascan``.

    Raises:
        MissingDependencyError: ``httpx2`` is not installed (``pip install "norefusal[client]"``).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 2,
        backoff_s: float = 0.05,
        max_backoff_s: float = 2.0,
        max_batch: int = 64,
        transport: httpx2.BaseTransport | None = None,
        async_transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        try:
            import httpx2
        except ImportError as exc:
            raise MissingDependencyError("RemoteScanner", "client") from exc
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}.")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"url must start with http:// or https://, got {url!r}.")
        if token is not None and not isinstance(token, str):
            raise TypeError(f"token must be a str or None, not {type(token).__name__}.")
        for name, value in (("timeout_s", timeout_s), ("backoff_s", backoff_s),
                            ("max_backoff_s", max_backoff_s)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}.")
            if not (math.isfinite(value) and value >= 0) or (name == "timeout_s" and value == 0):
                raise ConfigurationError(f"{name} must be a positive number, got {value!r}.")
        for name, count in (("retries", retries), ("max_batch", max_batch)):
            if isinstance(count, bool) or not isinstance(count, int):
                raise TypeError(f"{name} must be an int, not {type(count).__name__}.")
        if retries < 0 or max_batch < 1:
            raise ConfigurationError("retries must be >= 0 and max_batch >= 1.")
        self._httpx = httpx2
        self.url = url.rstrip("/")
        self._headers = {"content-type": "application/json", "accept": "application/json"}
        if token:
            self._headers["authorization"] = f"Bearer {token}"
        self._timeout = httpx2.Timeout(float(timeout_s))
        self._retries = retries
        self._backoff_s = float(backoff_s)
        self._max_backoff_s = float(max_backoff_s)
        self._max_batch = max_batch
        self._async_transport = async_transport
        self._client = httpx2.Client(
            base_url=self.url, headers=self._headers, timeout=self._timeout, transport=transport
        )
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx2.AsyncClient
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._info: dict[str, Any] = {}

    # -- what the service scans with ------------------------------------------------------------

    @property
    def threshold(self) -> float | None:
        """The service's threshold, once known (after :meth:`load` or a scan)."""
        value = self._info.get("threshold")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def model_name(self) -> str | None:
        """The service's model name, once known (after :meth:`load` or a scan)."""
        value = self._info.get("model")
        return value if isinstance(value, str) else None

    def __repr__(self) -> str:
        return f"RemoteScanner({self.url!r}, model={self.model_name!r})"

    def load(self) -> dict[str, Any]:
        """Ask the service what it scans with (``GET /v1/info``); a Guard's ``warm_up`` calls it.

        Raises:
            ScannerError: the service cannot be reached or refused the request.
        """
        info = self._send("GET", "/v1/info", None)
        if not isinstance(info, dict):
            raise ScannerError("The norefusal service returned malformed info.")
        self._info = info
        return info

    # -- scanning ---------------------------------------------------------------------------------

    def scan(self, prompt: str | None, output: str | None) -> ScanResult:
        """Scan one output on the service; see :meth:`NoRefusalScanner.scan`."""
        return self.scan_batch([(prompt, output)])[0]

    async def ascan(self, prompt: str | None, output: str | None) -> ScanResult:
        """:meth:`scan` over the async client; never blocks the event loop."""
        pair = (check_text(prompt, "prompt"), check_text(output, "output"))
        (result,) = await self._ascan_chunk([pair])
        return result

    def scan_batch(
        self, pairs: Iterable[tuple[str | None, str | None]], *, batch_size: int | None = None
    ) -> list[ScanResult]:
        """Scan many pairs, ``max_batch`` per request; results in the order of ``pairs``."""
        checked = self._check_pairs(pairs)
        size = self._batch_size(batch_size)
        out: list[ScanResult] = []
        for start in range(0, len(checked), size):
            out += self._scan_chunk(checked[start : start + size])
        return out

    def stream(self, prompt: str | None = None, **options: Any) -> StreamMonitor:
        """Monitor one streamed output; each checkpoint is one request (at most four a stream)."""
        # StreamMonitor only calls scanner.scan(prompt, text), which this class provides.
        return StreamMonitor(cast(Any, self), check_text(prompt, "prompt"), **options)

    # -- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sync connection pool (``aclose`` closes the current loop's async one)."""
        self._client.close()

    async def aclose(self) -> None:
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # -- the pure part: requests, and what an answer means ---------------------------------------

    @staticmethod
    def _check_pairs(pairs: Iterable[tuple[str | None, str | None]]) -> list[tuple[str, str]]:
        if isinstance(pairs, (str, bytes, Mapping)) or not isinstance(pairs, Iterable):
            raise TypeError(
                f"pairs must be an iterable of (prompt, output), not {type(pairs).__name__}."
            )
        checked = []
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError("each pair must be a (prompt, output) tuple.")
            checked.append((check_text(pair[0], "prompt"), check_text(pair[1], "output")))
        return checked

    def _batch_size(self, batch_size: int | None) -> int:
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}.")
        server_max = self._info.get("max_batch")
        limit = server_max if isinstance(server_max, int) and server_max > 0 else self._max_batch
        return min(batch_size or limit, limit)

    def _results(self, pairs: Sequence[tuple[str, str]], data: object) -> list[ScanResult]:
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list) or len(results) != len(pairs):
            raise ScannerError("The norefusal service returned a malformed batch answer.")
        out = [_result(output, item) for (_, output), item in zip(pairs, results, strict=True)]
        if out:  # label later results and events the way the service does
            self._info.setdefault("threshold", out[0].threshold)
            self._info.setdefault("model", out[0].model)
        return out

    def _decide(self, attempt: int, response: httpx2.Response, body: bytes) -> object:
        """The parsed JSON of a 200, a :class:`_Retry`, or a raised :class:`ScannerError`."""
        status, headers = response.status_code, response.headers
        if status == 200:
            try:
                return json.loads(body)
            except ValueError:
                raise ScannerError(
                    "The norefusal service returned a body that is not JSON."
                ) from None
        if status in _RETRY_STATUS and attempt < self._retries:
            retry_after = headers.get("retry-after")
            return _Retry(_backoff(attempt, self._backoff_s, self._max_backoff_s, retry_after))
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        reason = f": {message}" if isinstance(message, str) else ""
        if status == 401:
            reason = ": the bearer token is missing or wrong"
        raise ScannerError(f"The norefusal service at {self.url} answered {status}{reason}")

    def _on_transport_error(self, attempt: int, exc: Exception) -> _Retry:
        httpx = self._httpx
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            raise ScannerError(
                f"The norefusal service at {self.url} did not answer within "
                f"{self._timeout.read} s ({type(exc).__name__})."
            ) from exc
        if attempt >= self._retries:
            raise ScannerError(
                f"Could not reach the norefusal service at {self.url} after "
                f"{attempt + 1} attempt(s) ({type(exc).__name__})."
            ) from exc
        return _Retry(_backoff(attempt, self._backoff_s, self._max_backoff_s, None))

    # -- the I/O: sync and async drivers ----------------------------------------------------------

    def _scan_chunk(self, pairs: Sequence[tuple[str, str]]) -> list[ScanResult]:
        return self._results(pairs, self._send("POST", "/v1/scan/batch", _payload(pairs)))

    async def _ascan_chunk(self, pairs: Sequence[tuple[str, str]]) -> list[ScanResult]:
        return self._results(pairs, await self._asend("POST", "/v1/scan/batch", _payload(pairs)))

    def _send(self, method: str, path: str, body: bytes | None) -> object:
        attempt = 0
        while True:
            try:
                response = self._client.request(method, path, content=body)
                decision = self._decide(attempt, response, response.content)
            except self._httpx.TransportError as exc:
                decision = self._on_transport_error(attempt, exc)
            if not isinstance(decision, _Retry):
                return decision
            time.sleep(decision.delay_s)
            attempt += 1

    async def _asend(self, method: str, path: str, body: bytes | None) -> object:
        client = self._async_client()
        attempt = 0
        while True:
            try:
                response = await client.request(method, path, content=body)
                decision = self._decide(attempt, response, response.content)
            except self._httpx.TransportError as exc:
                decision = self._on_transport_error(attempt, exc)
            if not isinstance(decision, _Retry):
                return decision
            await asyncio.sleep(decision.delay_s)
            attempt += 1

    def _async_client(self) -> httpx2.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.get(loop)
            if client is None:
                client = self._async_clients[loop] = self._httpx.AsyncClient(
                    base_url=self.url,
                    headers=self._headers,
                    timeout=self._timeout,
                    transport=self._async_transport,
                )
        return client
