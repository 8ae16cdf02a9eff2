"""The service under bad input, wrong tokens, a hung or failing backend, and shutdown.

Every bad request gets a 4xx or 5xx with the one JSON error shape, well within the client's
timeout; the text sent never shows in a response or a log record; the server keeps serving.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from _live_server import GatedBackend, LiveServer, live_server
from norefusal import NoRefusalScanner
from norefusal.server import ServeSettings

SECRET = "SECRET-TEXT-4242"  # in every text sent: it must never come back in errors or logs
TIMEOUT_S = 10.0  # every request must be answered well within this


@pytest.fixture(scope="module")
def backend() -> GatedBackend:
    return GatedBackend()


@pytest.fixture(scope="module")
def served(backend: GatedBackend) -> Iterator[LiveServer]:
    # Four scan threads: two hang in one test while the others keep serving.
    settings = ServeSettings(max_text_chars=1000, max_batch=4, scan_timeout_s=1.0, scan_threads=4)
    with live_server(settings, scanner=NoRefusalScanner(backend=backend)) as live:
        yield live
    backend.release.set()


@pytest.fixture
def http(served: LiveServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=served.url, timeout=TIMEOUT_S) as client:
        yield client


def assert_serving(http: httpx2.Client) -> None:
    assert http.get("/healthz").status_code == 200
    good = http.post("/v1/scan", json={"prompt": "p", "output": "Sorry, I can't."})
    assert good.status_code == 200
    assert good.json()["is_refusal"] is True


def assert_error(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message", "details"}
    assert isinstance(body["message"], str)
    assert SECRET not in response.text
    return body


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"output": "' + SECRET.encode()
    for _ in range(total // (1 << 20)):
        yield b"x" * (1 << 20)


BAD_REQUESTS: dict[str, tuple[dict[str, Any], int]] = {
    "malformed JSON": ({"content": f'{{"output": "{SECRET}"'.encode()}, 422),
    "not an object": ({"json": [SECRET]}, 422),
    "output not a string": ({"json": {"prompt": SECRET, "output": 5}}, 422),
    "prompt not a string": ({"json": {"prompt": [SECRET], "output": SECRET}}, 422),
    "missing output": ({"json": {"prompt": SECRET}}, 422),
    "empty body": ({"content": b""}, 422),
    "output too long": ({"json": {"output": SECRET * 100}}, 422),
    "20 MB body": ({"content": b'{"output": "' + SECRET.encode() + b"x" * (20 << 20)}, 413),
    "20 MB chunked body": ({"content": _chunks(20 << 20)}, 413),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_input_gets_a_json_error_and_the_server_keeps_serving(
    http: httpx2.Client, case: str
) -> None:
    request, status = BAD_REQUESTS[case]
    headers = {"content-type": "application/json"}
    body = assert_error(http.post("/v1/scan", headers=headers, **request), status)
    if status == 422:
        assert body["message"] == "Validation failed"
        assert all(set(d) == {"loc", "msg", "type"} for d in body["details"])
    assert_serving(http)


def test_batch_limits(http: httpx2.Client) -> None:
    pairs = [{"prompt": "p", "output": SECRET}] * 5
    body = assert_error(http.post("/v1/scan/batch", json={"pairs": pairs}), 422)
    assert body["details"] == [
        {"loc": ["body", "pairs"], "msg": "List should have at most 4 items", "type": "too_long"}
    ]
    long = [{"prompt": "p", "output": "ok"}, {"prompt": SECRET * 100, "output": "ok"}]
    body = assert_error(http.post("/v1/scan/batch", json={"pairs": long}), 422)
    assert body["details"][0]["loc"] == ["body", "pairs", 1, "prompt"]
    assert_error(http.post("/v1/scan/batch", json={"pairs": SECRET}), 422)
    assert_serving(http)


def test_unknown_routes_and_methods(http: httpx2.Client) -> None:
    assert_error(http.get(f"/v1/{SECRET}"), 404)
    assert_error(http.get("/v1/scan"), 405)
    assert_serving(http)


def test_hung_backend_times_out_and_the_server_keeps_serving(
    http: httpx2.Client, backend: GatedBackend
) -> None:
    hung = http.post("/v1/scan", json={"output": f"HANG {SECRET}"})
    body = assert_error(hung, 504)
    assert body["message"] == "The scan did not finish within 1.0 s."
    # LLM Guard API's routes answer its own timeout: 408 "Request timeout."
    compat = http.post("/scan/output", json={"prompt": "p", "output": f"HANG {SECRET}"})
    assert assert_error(compat, 408)["message"] == "Request timeout."
    assert_serving(http)  # the other scan threads still work while two calls hang
    backend.release.set()


def test_failing_backend_is_a_500_without_text(
    http: httpx2.Client, backend: GatedBackend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.boom = True
    try:
        with caplog.at_level(logging.DEBUG):
            body = assert_error(http.post("/v1/scan", json={"output": SECRET}), 500)
    finally:
        backend.boom = False
    assert body["message"] == "The scanner failed (ScannerError)."
    assert "ScannerError" in caplog.text
    assert_serving(http)


def _all_logged_text(records: list[logging.LogRecord]) -> str:
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter())
    return "\n".join(handler.format(r) for r in records)


def test_no_request_text_in_any_log(
    http: httpx2.Client, backend: GatedBackend, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        http.post("/v1/scan", json={"prompt": SECRET, "output": f"Sorry {SECRET}"})
        http.post(f"/v1/scan?q={SECRET}", json={"output": SECRET})
        http.post("/analyze/output", json={"prompt": SECRET, "output": SECRET})
        http.post("/v1/scan", content=f'{{"output": "{SECRET}'.encode())
        http.post("/v1/scan", json={"output": SECRET * 100})
        http.post("/v1/scan", content=b'{"output": "' + SECRET.encode() + b"x" * (5 << 20))
        http.post(f"/{SECRET}", json={"output": SECRET})
        backend.boom = True
        try:
            http.post("/v1/scan", json={"output": SECRET})
        finally:
            backend.boom = False
    # The test's own HTTP client logs the URLs it calls; everything else is the server's.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx2", "httpcore2"))]
    assert SECRET not in _all_logged_text(server_side)
    access = [r.getMessage() for r in caplog.records if r.name == "norefusal.server.access"]
    assert len(access) == 8
    assert any('"POST /v1/scan" 200' in line for line in access)
    assert any('"POST unmatched" 404' in line for line in access)
    assert any('"POST /v1/scan" 413' in line for line in access)


def test_queue_full_is_a_503_with_retry_after() -> None:
    backend = GatedBackend()
    settings = ServeSettings(scan_threads=1, queue_size=1, scan_timeout_s=TIMEOUT_S)
    scanner = NoRefusalScanner(backend=backend)
    with (
        live_server(settings, scanner=scanner) as live,
        httpx2.Client(base_url=live.url, timeout=TIMEOUT_S) as http,
    ):
        first = _in_thread(http, "/v1/scan", {"output": "HANG"})
        assert backend.entered.wait(TIMEOUT_S)
        busy = http.post("/v1/scan", json={"output": SECRET})
        assert_error(busy, 503)
        assert busy.headers["retry-after"] == "1"
        metrics = http.get("/metrics").text
        assert "norefusal_queue_depth 1.0" in metrics
        assert 'norefusal_errors_total{kind="overloaded"} 1.0' in metrics
        backend.release.set()
        first.join(TIMEOUT_S)
        assert first.result.status_code == 200
        assert_serving(http)


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["env", "file"])
def test_bearer_tokens(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if source == "env":
        monkeypatch.setenv("NOREFUSAL_SERVE_TOKENS", "tok-a, tok-b")
        settings = ServeSettings()
    else:
        (tmp_path / "tokens").write_text("tok-a\n\ntok-b\n")
        settings = ServeSettings(token_file=tmp_path / "tokens")
    wrong = [
        {},
        {"authorization": "Bearer tok-c"},
        {"authorization": "Basic dG9r"},
        {"authorization": "Bearer tok-a2"},
        {"authorization": "Bearer"},
    ]
    scanner = NoRefusalScanner(model="keyword")
    with (
        live_server(settings, scanner=scanner) as live,
        httpx2.Client(base_url=live.url, timeout=TIMEOUT_S) as http,
    ):
        scan = {"prompt": "p", "output": SECRET}
        for headers in wrong:
            for path in ("/v1/scan", "/scan/output", "/analyze/output"):
                denied = http.post(path, json=scan, headers=headers)
                assert assert_error(denied, 401) == {"message": "Unauthorized", "details": None}
                assert denied.headers["www-authenticate"] == "Bearer"
            assert_error(http.get("/metrics", headers=headers), 401)
        for token in ("tok-a", "tok-b"):
            ok = http.post("/v1/scan", json=scan, headers={"authorization": f"Bearer {token}"})
            assert ok.status_code == 200
        assert http.get("/healthz").status_code == 200  # probes need no token
        assert http.get("/readyz").status_code == 200


# -- graceful shutdown -----------------------------------------------------------------------


class _Call(threading.Thread):
    def __init__(self, http: httpx2.Client, path: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self._http, self._path, self._body = http, path, body
        self.result: httpx2.Response

    def run(self) -> None:
        self.result = self._http.post(self._path, json=self._body)


def _in_thread(http: httpx2.Client, path: str, body: dict[str, Any]) -> _Call:
    call = _Call(http, path, body)
    call.start()
    return call


def _refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return False
    except OSError:
        return True


def test_graceful_shutdown_finishes_in_flight_and_turns_new_requests_away() -> None:
    backend = GatedBackend()
    settings = ServeSettings(scan_timeout_s=TIMEOUT_S)
    scanner = NoRefusalScanner(backend=backend)
    with live_server(settings, scanner=scanner, drain_s=TIMEOUT_S * 3) as live:
        in_flight_client = httpx2.Client(base_url=live.url, timeout=TIMEOUT_S)
        in_flight = _in_thread(in_flight_client, "/v1/scan", {"output": "HANG sorry"})
        assert backend.entered.wait(TIMEOUT_S)
        live.server.handle_exit(signal.SIGTERM, None)  # what uvicorn's signal handler calls
        with httpx2.Client(base_url=live.url, timeout=TIMEOUT_S) as http:
            drained = http.post("/v1/scan", json={"output": SECRET})
            assert_error(drained, 503)
            assert drained.headers["retry-after"] == "1"
            assert http.get("/readyz").status_code == 503
            assert http.get("/healthz").status_code == 200
        live.server.handle_exit(signal.SIGTERM, None)  # end the drain: uvicorn shuts down
        for _ in range(100):  # the listening socket closes; the in-flight request holds on
            if _refused(live.url):
                break
            threading.Event().wait(0.1)
        assert _refused(live.url)
        assert in_flight.is_alive()
        backend.release.set()
        in_flight.join(TIMEOUT_S)
        assert in_flight.result.status_code == 200
        assert json.loads(in_flight.result.content)["is_refusal"] is True
        in_flight_client.close()
        live.thread.join(TIMEOUT_S)
        assert not live.thread.is_alive()
