"""RemoteScanner: policies and adapters unchanged over the real service; retries and errors."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest
from _live_server import LiveServer, live_server
from _openai_fakes import FakeServer, chat_choice, chat_completion, chat_stream, sse
from langchain_core.messages import AIMessage
from norefusal import (
    ConfigurationError,
    NoRefusalScanner,
    RefusalDetected,
    RemoteScanner,
    ScannerError,
    ScanResult,
    Signal,
)
from norefusal.integrations.langchain import NoRefusalGuard
from norefusal.integrations.openai import GuardedOpenAI
from norefusal.policies import Candidate, Guard, Policy
from norefusal.server import ServeSettings

REFUSAL = "I'm sorry, but I can't help with that request."
ANSWER = "The capital of France is Paris. It sits on the Seine and has about two million people."


@pytest.fixture(scope="module")
def served() -> Iterator[LiveServer]:
    with live_server(ServeSettings(scan_timeout_s=120)) as live:
        yield live


@pytest.fixture
def remote(served: LiveServer) -> Iterator[RemoteScanner]:
    with RemoteScanner(served.url, timeout_s=120) as scanner:
        yield scanner


@pytest.fixture(scope="module")
def local() -> NoRefusalScanner:
    return NoRefusalScanner()


# -- the library above the scanner, unchanged --------------------------------------------------


def test_guard_over_remote_scanner_decides_as_in_process(
    remote: RemoteScanner, local: NoRefusalScanner
) -> None:
    over_http, in_process = Guard("strict", scanner=remote), Guard("strict", scanner=local)
    over_http.warm_up()  # RemoteScanner.load: asks the service what it scans with
    assert remote.threshold == local.threshold
    assert remote.model_name == "default"
    for text in (REFUSAL, ANSWER, ""):
        got = over_http.check("q", Candidate(text))
        assert got == in_process.check("q", Candidate(text))
        assert got.score == in_process.check("q", Candidate(text)).score
    with pytest.raises(RefusalDetected) as caught:
        over_http.run("q", REFUSAL, candidates=lambda r: [Candidate(r)])
    assert caught.value.result.signal is Signal.CLASSIFIER
    assert over_http.run("q", ANSWER, candidates=lambda r: [Candidate(r)]).response == ANSWER


def test_guarded_openai_over_remote_scanner(remote: RemoteScanner) -> None:
    fake = FakeServer()
    client = fake.client(GuardedOpenAI, guard=Guard("strict", scanner=remote))
    fake.add(json=chat_completion(chat_choice(ANSWER)))
    answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    assert answer.choices[0].message.content == ANSWER
    fake.add(json=chat_completion(chat_choice(REFUSAL)))
    with pytest.raises(RefusalDetected):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    # a stream: the guard's monitor scans the text so far through the service
    fake.add(sse=sse(chat_stream(REFUSAL + " " + ANSWER * 3)))
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "q"}], stream=True
    )
    with pytest.raises(RefusalDetected):
        for _ in stream:
            pass
    assert client.guard.metrics.snapshot()["refusals"] == 2


def test_langchain_guard_over_remote_scanner(remote: RemoteScanner) -> None:
    guard = NoRefusalGuard("strict", scanner=remote)  # type: ignore[arg-type]
    assert guard.invoke(AIMessage(ANSWER)).content == ANSWER
    with pytest.raises(RefusalDetected):
        guard.invoke(AIMessage(REFUSAL))


def test_unreachable_service_is_a_scanner_error_the_policy_decides() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    scanner = RemoteScanner(url, retries=1, backoff_s=0.01)
    with pytest.raises(ScannerError, match=r"after 2 attempt\(s\) \(ConnectError\)"):
        scanner.scan("q", REFUSAL)
    allow = Guard(Policy(name="open", action="raise", on_error="allow"), scanner=scanner)
    assert allow.check("q", Candidate(REFUSAL)).signal is Signal.ERROR
    assert allow.check("q", Candidate(REFUSAL)).valid
    block = Guard(Policy(name="closed", action="flag", on_error="block"), scanner=scanner)
    assert not block.check("q", Candidate(ANSWER)).valid


# -- retries and errors, over a fake transport -------------------------------------------------


def _ok(pairs: list[dict[str, str]]) -> dict[str, Any]:
    results = [
        ScanResult(p["output"], score=0.25, threshold=0.5, model="m").to_dict() for p in pairs
    ]
    return {"results": results}


class Fake:
    """Answers each request with the next of ``answers``: a status, an exception, or 200."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        if answer == 200:
            return httpx2.Response(200, json=_ok(json.loads(request.content)["pairs"]))
        headers = {"retry-after": "0"} if answer == 503 else {}
        return httpx2.Response(answer, json={"message": "busy", "details": None}, headers=headers)


def _sync(fake: Fake, **options: Any) -> RemoteScanner:
    return RemoteScanner("http://svc", transport=httpx2.MockTransport(fake), **options)


def _async(fake: Fake, **options: Any) -> RemoteScanner:
    return RemoteScanner("http://svc", async_transport=httpx2.MockTransport(fake), **options)


async def _outcomes(make_fake: Callable[[], Fake]) -> list[tuple[Fake, Any]]:
    """One scan through the sync client and one through the async client, each on a fresh
    fake: (the fake, the result or the ScannerError)."""
    out: list[tuple[Fake, Any]] = []
    for use_async in (False, True):
        fake = make_fake()
        try:
            if use_async:
                result: Any = await _async(fake, backoff_s=0.001).ascan("q", "out")
            else:
                result = _sync(fake, backoff_s=0.001).scan("q", "out")
        except ScannerError as exc:
            result = exc
        out.append((fake, result))
    return out


@pytest.mark.parametrize(
    "answers",
    [(503, httpx2.ConnectError("refused")), (httpx2.RemoteProtocolError("dropped"), 503)],
)
async def test_503_and_connection_errors_are_retried_then_succeed(
    answers: tuple[int | Exception, ...],
) -> None:
    for fake, result in await _outcomes(lambda: Fake(*answers)):
        assert isinstance(result, ScanResult)
        assert result.score == 0.25
        assert len(fake.requests) == 3


async def test_retries_are_bounded() -> None:
    for fake, result in await _outcomes(lambda: Fake(503, 503, 503, 503)):
        assert isinstance(result, ScannerError)
        assert "answered 503: busy" in str(result)
        assert len(fake.requests) == 3  # the first try and retries=2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (401, "answered 401: the bearer token is missing or wrong"),
        (422, "answered 422: busy"),
        (500, "answered 500: busy"),
        (httpx2.ReadTimeout("slow"), "did not answer within 10.0 s (ReadTimeout)"),
    ],
)
async def test_other_failures_are_not_retried(answer: int | Exception, message: str) -> None:
    for fake, result in await _outcomes(lambda: Fake(answer)):
        assert isinstance(result, ScannerError)
        assert message in str(result)
        assert len(fake.requests) == 1


def test_malformed_answers_are_scanner_errors() -> None:
    for body in (b"not json", b"[]", b'{"results": [1]}', b'{"results": []}'):
        transport = httpx2.MockTransport(lambda r, body=body: httpx2.Response(200, content=body))
        with pytest.raises(ScannerError, match="norefusal service returned"):
            RemoteScanner("http://svc", transport=transport).scan("q", "out")


def test_batches_are_split_and_kept_in_order() -> None:
    fake = Fake()
    pairs = [("q", f"output {i}") for i in range(5)]
    results = _sync(fake, max_batch=2).scan_batch(pairs)
    assert [r.sanitized for r in results] == [o for _, o in pairs]
    assert [len(json.loads(r.content)["pairs"]) for r in fake.requests] == [2, 2, 1]
    assert "authorization" not in fake.requests[0].headers
    fake = Fake()
    _sync(fake, token="s3cret").scan(None, None)
    assert fake.requests[0].headers["authorization"] == "Bearer s3cret"
    assert json.loads(fake.requests[0].content) == {"pairs": [{"prompt": "", "output": ""}]}


def test_misuse_raises_at_once_without_a_request() -> None:
    fake = Fake()
    scanner = _sync(fake)
    with pytest.raises(TypeError, match="output must be a str or None"):
        scanner.scan("q", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prompt must be a str or None"):
        scanner.scan(b"q", "o")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pairs must be an iterable"):
        scanner.scan_batch("qo")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="each pair"):
        scanner.scan_batch([("q", "o", "x")])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="batch_size"):
        scanner.scan_batch([("q", "o")], batch_size=0)
    assert fake.requests == []
    with pytest.raises(TypeError, match="url must be a str"):
        RemoteScanner(8000)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        RemoteScanner("svc:8000")
    with pytest.raises(TypeError, match="timeout_s must be a number"):
        RemoteScanner("http://svc", timeout_s="1")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="timeout_s must be a positive"):
        RemoteScanner("http://svc", timeout_s=0)
    with pytest.raises(TypeError, match="retries must be an int"):
        RemoteScanner("http://svc", retries=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token must be a str"):
        RemoteScanner("http://svc", token=b"x")  # type: ignore[arg-type]
