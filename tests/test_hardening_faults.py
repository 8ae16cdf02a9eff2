"""Hardening, faults: a backend that raises, hangs or returns NaN, a missing or corrupt model, a
stream cut mid-way, a consumer cancelled mid-stream.

Whatever fails, the policy's ``on_error`` decides (or a clear error is raised), nothing blocks
past ``timeout_s``, and no thread or task is left behind: the only threads a fault may keep are
those of the policies' scan pool, which is bounded (``MAX_WORKERS`` <= 16 daemon threads).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import numpy.typing as npt
import openai
import pytest
from _openai_fakes import BASE_URL, chat_choice, chat_completion, chat_stream, no_network, sse
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    FakeListChatModelError,
)
from norefusal import (
    ModelLoadError,
    NoRefusalScanner,
    RefusalDetected,
    ScannerError,
    Signal,
)
from norefusal._backends import Backend
from norefusal.integrations.langchain import NoRefusalCallbackHandler
from norefusal.integrations.openai import GuardedAsyncOpenAI, GuardedOpenAI
from norefusal.policies import Candidate, Guard, Policy
from norefusal.policies._pool import MAX_WORKERS

__all__ = ["no_network"]  # autouse fixture: no test here may reach the network

PROMPT = "What is the capital of France?"
ANSWER = "The capital of France is Paris, on the Seine. " * 12
REFUSAL = "I'm sorry, but I can't help with that request."
HANG_S = 30.0  # how long a hung backend would block
BOUND_S = 10.0  # how long a caller may wait for one, with timeout_s=0.2
FAULTS = ["raise", "nan", "inf", "shape", "hang"]


class FaultyBackend(Backend):
    """A backend with one fault; a hang lasts ``HANG_S`` unless released (tests release it)."""

    name = "faulty"

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.release = threading.Event()
        self.entered = threading.Event()

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        self.entered.set()
        if self.fault == "raise":  # careless backends quote their input in their errors
            raise ValueError(f"cannot score {texts[0]!r}")
        if self.fault == "nan":
            return np.full(len(texts), np.nan)
        if self.fault == "inf":
            return np.full(len(texts), np.inf)
        if self.fault == "shape":
            return np.zeros(len(texts) + 1)
        self.release.wait(HANG_S)
        return np.zeros(len(texts))


@pytest.fixture
def make_faulty() -> Iterator[Any]:
    """Builds scanners on a backend with a fault; hung backends are released after the test."""
    backends: list[FaultyBackend] = []

    def make(fault: str) -> tuple[NoRefusalScanner, FaultyBackend]:
        backend = FaultyBackend(fault)
        scanner = NoRefusalScanner(backend=backend)
        backends.append(backend)
        return scanner, backend

    yield make
    for backend in backends:
        backend.release.set()


def policy(action: str = "flag", *, on_error: str = "allow", timeout_s: float = 0.2) -> Policy:
    settings: dict[str, Any] = {
        "name": f"faults-{action}-{on_error}",
        "action": action,
        "on_error": on_error,
        "timeout_s": timeout_s,
    }
    if action == "replace":
        settings["replacement"] = "Replaced."
    return Policy.from_dict(settings)


def scan_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("norefusal-scan-")]


@contextmanager
def no_thread_leak() -> Iterator[None]:
    """Every thread started inside is gone afterwards, except the bounded scan pool's."""
    before = {t.ident for t in threading.enumerate()}
    yield
    new = [t for t in threading.enumerate() if t.ident not in before]
    pool = [t for t in new if t.name.startswith("norefusal-scan-")]
    loop_executor = [t for t in new if t.name.startswith("asyncio_")]  # the loop's own pool
    assert [t.name for t in new if t not in pool and t not in loop_executor] == []
    assert len(loop_executor) <= min(32, (os.cpu_count() or 1) + 4)
    assert all(t.daemon for t in scan_threads())
    assert len(scan_threads()) <= MAX_WORKERS <= 16


def only_this_task() -> bool:
    return asyncio.all_tasks() == {asyncio.current_task()}


# -- the scanner itself: a clear error, never a garbage score ------------------------------------


@pytest.mark.parametrize("fault", ["raise", "nan", "inf", "shape"])
async def test_a_faulty_backend_is_a_scanner_error_without_the_text(
    fault: str, make_faulty: Any
) -> None:
    scanner, _ = make_faulty(fault)
    secret = "the user's private question 7f3a"
    for call in (
        lambda: scanner.scan(PROMPT, secret),
        lambda: scanner.scan_batch([(PROMPT, secret), (PROMPT, ANSWER)]),
        lambda: _stream_finish(scanner, secret),
    ):
        with pytest.raises(ScannerError, match="'custom' backend") as info:
            call()
        assert secret not in str(info.value)
        assert secret not in repr(info.value)
    with pytest.raises(ScannerError):
        await scanner.ascan(PROMPT, secret)
    assert scanner.scan(PROMPT, "   ").signal is Signal.EMPTY  # nothing to score: no fault


def _stream_finish(scanner: NoRefusalScanner, text: str) -> object:
    monitor = scanner.stream(PROMPT)
    monitor.feed(text)
    return monitor.finish()


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("on_error", ["allow", "block"])
def test_on_error_decides_every_fault_within_the_timeout(
    fault: str, on_error: str, make_faulty: Any
) -> None:
    scanner, _ = make_faulty(fault)
    guard = Guard(policy(on_error=on_error), scanner=scanner)
    with no_thread_leak():
        started = time.monotonic()
        result = guard.check(PROMPT, Candidate(ANSWER))
        assert time.monotonic() - started < BOUND_S
    assert result.signal is Signal.ERROR
    assert result.detail == ("timeout" if fault == "hang" else "error:ScannerError")
    assert result.is_refusal is (on_error == "block")
    assert result.sanitized == ANSWER  # the caller's own output comes back
    assert guard.metrics.snapshot()["errors"] == 1


async def test_a_flood_of_checks_on_a_hung_backend_stays_bounded(make_faulty: Any) -> None:
    scanner, backend = make_faulty("hang")
    guard = Guard(policy(), scanner=scanner)
    with no_thread_leak():
        started = time.monotonic()
        results = await asyncio.gather(
            *(guard.acheck(PROMPT, Candidate(f"{ANSWER} {i}")) for i in range(200))
        )
        assert time.monotonic() - started < BOUND_S
        assert {r.detail for r in results} == {"timeout"}
        assert backend.entered.is_set()
        assert only_this_task()
    backend.release.set()
    # Released, the pool serves again: the queued work of the callers who gave up is dropped.
    fresh = Guard(policy(timeout_s=20), scanner=NoRefusalScanner(model="keyword"))
    assert (await fresh.acheck(PROMPT, Candidate(REFUSAL))).signal is Signal.CLASSIFIER


# -- through the integrations --------------------------------------------------------------------


def openai_client(kind: str, guard: Guard, handler: Any) -> Any:
    transport = httpx2.MockTransport(handler)
    cls, http = (
        (GuardedOpenAI, httpx2.Client)
        if kind == "sync"
        else (GuardedAsyncOpenAI, httpx2.AsyncClient)
    )
    return cls(
        api_key="sk-test",
        base_url=BASE_URL,
        max_retries=0,
        http_client=http(transport=transport),
        guard=guard,
    )


async def call(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def read_all(stream: Any) -> list[Any]:
    if hasattr(stream, "__aiter__"):
        return [chunk async for chunk in stream]
    return list(stream)


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("fault", ["raise", "hang"])
async def test_openai_caller_gets_its_output_or_a_clear_error(
    kind: str, fault: str, make_faulty: Any
) -> None:
    events = chat_stream(ANSWER, size=9)
    body = chat_completion(chat_choice(ANSWER))

    def handle(request: httpx2.Request) -> httpx2.Response:
        if b'"stream":true' in request.content.replace(b" ", b""):
            return httpx2.Response(
                200, headers={"content-type": "text/event-stream"}, content=b"".join(sse(events))
            )
        return httpx2.Response(200, json=body)

    scanner, _ = make_faulty(fault)
    ask: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": PROMPT}]}
    with no_thread_leak():
        started = time.monotonic()
        allow = openai_client(kind, Guard(policy("flag"), scanner=scanner), handle)
        completion = await call(allow.chat.completions.create(**ask))
        assert completion.choices[0].message.content == ANSWER
        chunks = await read_all(await call(allow.chat.completions.create(stream=True, **ask)))
        assert [c.to_dict() for c in chunks] == events  # every chunk, unchanged
        strict = openai_client(
            kind, Guard(policy("raise", on_error="block"), scanner=scanner), handle
        )
        with pytest.raises(RefusalDetected) as info:
            await call(strict.chat.completions.create(**ask))
        assert info.value.result.signal is Signal.ERROR
        with pytest.raises(RefusalDetected):
            await read_all(await call(strict.chat.completions.create(stream=True, **ask)))
        assert time.monotonic() - started < 3 * BOUND_S  # six guarded calls, none hung
        for client in (allow, strict):
            await call(client.close())
        if kind == "async":
            assert only_this_task()


@pytest.mark.parametrize("fault", ["raise", "nan", "hang"])
def test_langchain_handler_follows_on_error(fault: str, make_faulty: Any) -> None:
    scanner, _ = make_faulty(fault)
    with no_thread_leak():
        allow = NoRefusalCallbackHandler(guard=Guard(policy("flag"), scanner=scanner))
        run_id = uuid.uuid4()
        out = FakeListChatModel(responses=[REFUSAL]).invoke(
            PROMPT, config={"callbacks": [allow], "run_id": run_id}
        )
        assert out.content == REFUSAL  # fail open: the output goes through
        assert allow.results[run_id].result.signal is Signal.ERROR
        block = NoRefusalCallbackHandler(
            guard=Guard(policy("raise", on_error="block"), scanner=scanner)
        )
        with pytest.raises(RefusalDetected) as info:
            FakeListChatModel(responses=[ANSWER]).invoke(PROMPT, config={"callbacks": [block]})
        assert info.value.result.signal is Signal.ERROR  # fail closed
        assert allow.in_flight == block.in_flight == 0


# -- the model file missing or corrupt ----------------------------------------------------------


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


BREAKS: dict[str, Callable[[Path], object]] = {
    "model.onnx missing": lambda d: (d / "model.onnx").unlink(),
    "tokenizer.json missing": lambda d: (d / "tokenizer.json").unlink(),
    "model.onnx corrupted": lambda d: _flip_byte(d / "model.onnx"),
    "tokenizer.json altered": lambda d: (d / "tokenizer.json").write_text("{}"),
    "model.onnx truncated": lambda d: (d / "model.onnx").write_bytes(b"\x08\x07"),
}


@pytest.mark.parametrize("damage", sorted(BREAKS))
def test_a_broken_model_is_a_clear_load_error_never_hidden_by_on_error(
    damage: str, tiny_onnx_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_onnx_dir, model)
    BREAKS[damage](model)
    scanner = NoRefusalScanner(model=str(model))  # resolving is cheap: no load yet
    with pytest.raises(ModelLoadError) as info:
        scanner.scan(PROMPT, ANSWER)
    message = str(info.value)
    assert str(model) in message
    if "corrupted" in damage or "altered" in damage or "truncated" in damage:
        assert "SHA256" in message
    # A broken model fails every call loudly; on_error is for transient scanner failures.
    guard = Guard(policy(on_error="allow"), scanner=scanner)
    with pytest.raises(ModelLoadError):
        guard.check(PROMPT, Candidate(ANSWER))
    # Repaired, the same scanner loads: a failed load is not cached.
    shutil.rmtree(model)
    shutil.copytree(tiny_onnx_dir, model)
    assert scanner.scan(PROMPT, ANSWER).signal is Signal.CLASSIFIER


@pytest.mark.parametrize("content", [None, "not json", "[1, 2]", '{"labels": ["a"]}'])
def test_a_missing_or_malformed_manifest_fails_at_construction(
    content: str | None, tiny_onnx_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_onnx_dir, model)
    manifest = model / "norefusal.json"
    if content is None:
        manifest.unlink()
    else:
        manifest.write_text(content)
    with pytest.raises(ModelLoadError, match=r"norefusal\.json"):
        NoRefusalScanner(model=str(model), backend="onnx")


# -- the upstream stream cut mid-way -----------------------------------------------------------


class CutStream(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A body that sends ``chunks`` then fails with ``error`` (or just ends, when None)."""

    def __init__(self, chunks: list[bytes], error: Exception | None) -> None:
        self.chunks = chunks
        self.error = error
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.error is not None:
            raise self.error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


CUTS = {
    "connection reset": httpx2.ReadError("connection reset by peer"),
    "peer closed mid-body": httpx2.RemoteProtocolError("peer closed connection"),
    "read timeout": httpx2.ReadTimeout("stalled"),
    "body ends mid-event": None,
}


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("cut", sorted(CUTS))
async def test_a_cut_stream_behaves_exactly_like_the_unguarded_client(kind: str, cut: str) -> None:
    """Every chunk received before the cut, then the client's own error (or its own end)."""
    body = sse(chat_stream(ANSWER + REFUSAL, size=11), done=False)
    sent = [*body[:25], body[25][:30]]  # the last event broken off in the middle
    streams: list[CutStream] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        stream = CutStream(sent, CUTS[cut])
        streams.append(stream)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    async def read(client: Any) -> tuple[list[dict[str, Any]], type[BaseException] | None]:
        ask = {"model": "m", "messages": [{"role": "user", "content": PROMPT}], "stream": True}
        got: list[dict[str, Any]] = []
        try:
            stream = await call(client.chat.completions.create(**ask))
            if kind == "sync":
                for chunk in stream:
                    got.append(chunk.to_dict())
            else:
                async for chunk in stream:
                    got.append(chunk.to_dict())
        except Exception as exc:
            return got, type(exc)
        return got, None

    transport = httpx2.MockTransport(handle)
    plain: Any = (
        openai.OpenAI(
            api_key="sk",
            base_url=BASE_URL,
            max_retries=0,
            http_client=httpx2.Client(transport=transport),
        )
        if kind == "sync"
        else openai.AsyncOpenAI(
            api_key="sk",
            base_url=BASE_URL,
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=transport),
        )
    )
    guarded = openai_client(
        kind, Guard(policy("flag"), scanner=NoRefusalScanner(model="keyword")), handle
    )
    with no_thread_leak():
        expected = await read(plain)
        got = await read(guarded)
    assert got == expected
    assert len(got[0]) == 25
    assert (got[1] is None) is (CUTS[cut] is None)


def test_a_langchain_stream_that_fails_mid_way_leaves_no_run_state() -> None:
    handler = NoRefusalCallbackHandler(
        guard=Guard("strict", scanner=NoRefusalScanner(model="keyword"))
    )
    model = FakeListChatModel(responses=[ANSWER], error_on_chunk_number=5)
    got: list[Any] = []
    with pytest.raises(FakeListChatModelError):
        got.extend(model.stream(PROMPT, config={"callbacks": [handler]}))
    assert len(got) == 5
    assert handler.in_flight == 0
    assert len(handler.results) == 0  # no verdict invented for a broken run


# -- the consumer cancelled mid-stream --------------------------------------------------------


class StallingStream(httpx2.AsyncByteStream):
    """Sends ``chunks``, then waits for more that never come."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.sent += 1
            yield chunk
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize("where", ["waiting for upstream", "waiting for a hung scan"])
async def test_cancelling_the_consumer_mid_stream(where: str, make_faulty: Any) -> None:
    scanner = NoRefusalScanner(model="keyword")
    backend = None
    if where == "waiting for a hung scan":
        scanner, backend = make_faulty("hang")
    body = sse(chat_stream(ANSWER, size=10), done=False)
    upstream: list[StallingStream] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        stream = StallingStream(body[:30])
        upstream.append(stream)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    # A long timeout: cancellation, not the timeout, must end the wait.
    client = openai_client(
        "async", Guard(policy("raise", timeout_s=HANG_S), scanner=scanner), handle
    )
    got: list[Any] = []
    reading = asyncio.Event()

    async def consume() -> None:
        ask = {"model": "m", "messages": [{"role": "user", "content": PROMPT}], "stream": True}
        stream = await client.chat.completions.create(**ask)
        reading.set()
        async for chunk in stream:
            got.append(chunk)

    with no_thread_leak():
        task = asyncio.create_task(consume())
        await asyncio.wait_for(reading.wait(), BOUND_S)  # a broken test fails, never hangs
        if backend is not None:
            await asyncio.to_thread(backend.entered.wait, BOUND_S)
            assert backend.entered.is_set()
        else:
            for _ in range(int(BOUND_S / 0.01)):
                if upstream[0].sent == 30:
                    break
                await asyncio.sleep(0.01)
            assert upstream[0].sent == 30
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < BOUND_S
        assert upstream[0].closed  # the HTTP response is released at once
        await client.close()
        assert only_this_task()
    if backend is None:
        assert len(got) == 30  # all cleared chunks arrived before the stall
    else:
        # Only the role chunk, which holds no text: the rest waits for the first check.
        assert "".join(c.choices[0].delta.content or "" for c in got) == ""


async def test_cancelling_a_langchain_stream_drops_its_run() -> None:
    handler = NoRefusalCallbackHandler(
        guard=Guard("strict", scanner=NoRefusalScanner(model="keyword"))
    )
    model = FakeListChatModel(responses=[ANSWER], sleep=0.05)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in model.astream(PROMPT, config={"callbacks": [handler]}):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), BOUND_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handler.in_flight == 0
    assert only_this_task()
