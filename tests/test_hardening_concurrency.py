"""Hardening, concurrency: shared objects give every caller exactly its own sequential verdict.

One scanner, one guarded OpenAI client and one LangChain handler serve many callers at once;
per-call and per-stream state must never live on the shared object. Each test first runs every
case alone, one after another, then all of them at once, and demands identical verdicts, and
for streams the same chunks, each exactly once and in order, byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest
from _openai_fakes import BASE_URL, RecordingStream, chat_stream, no_network, pieces, sse
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from norefusal import NoRefusalScanner, RefusalDetected, ScanResult
from norefusal.integrations.langchain import (
    AsyncNoRefusalCallbackHandler,
    NoRefusalCallbackHandler,
    RunVerdict,
)
from norefusal.integrations.openai import GuardedAsyncOpenAI, GuardedOpenAI
from norefusal.policies import Guard, Policy
from norefusal.policies._pool import MAX_WORKERS

__all__ = ["no_network"]  # autouse fixture: no test here may reach the network

REFUSAL = "I'm sorry, but I can't help with that request."
STREAMS = 200
Handler = NoRefusalCallbackHandler | AsyncNoRefusalCallbackHandler


def key(result: ScanResult) -> tuple[Any, ...]:
    """Everything a caller can read from a result (a mix-up changes at least the text)."""
    return (*result, result.score, result.is_refusal, result.signal, result.model, result.detail)


def case_text(i: int) -> str:
    """Stream ``i``'s text: unique filler with a refusal at its own position, or none."""
    filler = " ".join(f"Stream {i} says fact {j} about Paris." for j in range(18))
    position = (None, 0, 30, 120, 400, len(filler))[i % 6]
    if position is None:
        return filler
    return filler[:position] + " " + REFUSAL + " " + filler[position:]


def policy(action: str) -> Policy:
    # A generous timeout: a loaded CI machine must not turn slow scans into on_error verdicts,
    # which would make the concurrent verdicts differ from the sequential ones for a bad reason.
    settings: dict[str, Any] = {"name": f"conc-{action}", "action": action, "timeout_s": 120}
    if action == "replace":
        settings["replacement"] = "Replaced."
    return Policy.from_dict(settings)


def scan_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("norefusal-scan-")]


# -- the scanner ------------------------------------------------------------------------------

PAIRS = [
    (f"question {i}", case_text(i)[: 40 + (i * 37) % 900] + " " * (i % 3)) for i in range(1000)
]


async def test_1000_concurrent_ascans_give_the_sequential_verdicts(
    keyword_scanner: NoRefusalScanner,
) -> None:
    expected = [key(keyword_scanner.scan(p, o)) for p, o in PAIRS]
    assert 50 < sum(k[4] for k in expected) < 950  # both verdicts are well represented

    got = await asyncio.gather(*(keyword_scanner.ascan(p, o) for p, o in PAIRS))

    assert [key(r) for r in got] == expected


async def test_1000_concurrent_ascans_on_the_onnx_model(onnx_scanner: NoRefusalScanner) -> None:
    expected = [key(onnx_scanner.scan(p, o)) for p, o in PAIRS]
    assert len({k[3] for k in expected}) > 100  # distinct scores: a swap would show

    got = await asyncio.gather(*(onnx_scanner.ascan(p, o) for p, o in PAIRS))

    assert [key(r) for r in got] == expected


@pytest.mark.parametrize(("which", "per_thread"), [("keyword", 100), ("onnx", 30)])
def test_64_threads_sharing_one_scanner(
    which: str, per_thread: int, request: pytest.FixtureRequest
) -> None:
    scanner: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    expected = [key(scanner.scan(p, o)) for p, o in PAIRS]
    barrier = threading.Barrier(64, timeout=60)

    def work(t: int) -> list[tuple[int, tuple[Any, ...]]]:
        mine = [(t * 97 + k * 13) % len(PAIRS) for k in range(per_thread)]
        barrier.wait()  # all threads start together, so the calls really overlap
        out = []
        for k, i in enumerate(mine):
            if k % 3 == 0:  # mix the entry points: scan, batch of two, a stream monitor
                out.append((i, key(scanner.scan(*PAIRS[i]))))
            elif k % 3 == 1:
                j = (i + 1) % len(PAIRS)
                a, b = scanner.scan_batch([PAIRS[i], PAIRS[j]])
                out += [(i, key(a)), (j, key(b))]
            else:
                monitor = scanner.stream(PAIRS[i][0])
                for piece in pieces(PAIRS[i][1], 7):
                    monitor.feed(piece)
                out.append((i, key(monitor.finish())))
        return out

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(work, range(64)))
    checked = 0
    for got in results:
        for i, k in got:
            assert k == expected[i]
            checked += 1
    assert checked >= 64 * per_thread


def test_64_interleaved_monitors_on_one_scanner(keyword_scanner: NoRefusalScanner) -> None:
    """Each thread feeds its own stream; verdicts and cleared counts match a lone run."""
    texts = [case_text(i) for i in range(64)]

    def follow(text: str, barrier: threading.Barrier | None) -> tuple[Any, ...]:
        monitor = keyword_scanner.stream("q")
        if barrier is not None:
            barrier.wait()
        found = [(monitor.length, key(v)) for p in pieces(text, 5) if (v := monitor.feed(p))]
        final = monitor.finish()
        assert monitor.text == text  # no piece of another stream, none lost
        return tuple(found), key(final), monitor.cleared, monitor.scans

    expected = [follow(t, None) for t in texts]
    assert any(e[0] for e in expected)
    assert not all(e[0] for e in expected)
    barrier = threading.Barrier(64, timeout=60)
    with ThreadPoolExecutor(64) as pool:
        got = list(pool.map(lambda t: follow(t, barrier), texts))
    assert got == expected


async def test_the_scanner_keeps_no_per_call_state(keyword_scanner: NoRefusalScanner) -> None:
    """Structural: scanning and streaming never write to the shared scanner."""
    keyword_scanner.load()
    before = {k: (id(v), repr(v)) for k, v in vars(keyword_scanner).items()}
    await asyncio.gather(*(keyword_scanner.ascan(p, o) for p, o in PAIRS[:100]))
    monitors = [keyword_scanner.stream(p) for p, _ in PAIRS[:50]]
    for monitor, (_, output) in zip(monitors, PAIRS, strict=False):
        monitor.feed(output)
        monitor.finish()
    keyword_scanner.scan_batch(PAIRS[:100])
    assert {k: (id(v), repr(v)) for k, v in vars(keyword_scanner).items()} == before


# -- one guarded OpenAI client, 200 interleaved streams -----------------------------------------


def canonical(items: list[dict[str, Any]]) -> bytes:
    """One byte string for a list of chunks: key order normalised, nothing else."""
    return b"".join(json.dumps(item, sort_keys=True).encode() + b"\n" for item in items)


class Upstream:
    """Serves each stream's own SSE body, chosen by the request's user message."""

    def __init__(self, count: int) -> None:
        self.events = {
            f"ask {i}": chat_stream(case_text(i), size=16 + i % 17) for i in range(count)
        }
        self.bodies: list[RecordingStream] = []
        self._lock = threading.Lock()

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        ask = json.loads(request.content)["messages"][-1]["content"]
        body = RecordingStream(sse(self.events[ask]))
        with self._lock:
            self.bodies.append(body)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    def client(self, cls: Any, guard: Guard) -> Any:
        transport = httpx2.MockTransport(self.handle)
        http = httpx2.AsyncClient if cls is GuardedAsyncOpenAI else httpx2.Client
        return cls(
            api_key="sk-test",
            base_url=BASE_URL,
            max_retries=0,
            http_client=http(transport=transport),
            guard=guard,
        )


def request(i: int) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"ask {i}"}],
        "stream": True,
    }


def outcome(chunks: list[Any], stream: Any, error: RefusalDetected | None) -> tuple[Any, ...]:
    verdict = stream.verdict
    return (
        canonical([c.to_dict() for c in chunks]),
        None if verdict is None else key(verdict),
        stream.action,
        None if error is None else (type(error), error.output),
    )


def check_streams(
    upstream: Upstream, action: str, got: dict[int, tuple[Any, ...]], alone: dict[int, Any]
) -> None:
    assert got == alone
    refused = 0
    for i, (body, verdict, _, error) in got.items():
        events = upstream.events[f"ask {i}"]
        text = case_text(i)
        if verdict is not None:
            refused += 1
            assert text.startswith(verdict[0])  # the verdict is on this stream's own text
        if action == "flag" or verdict is None:
            assert body == canonical(events)  # every chunk, once, in order, unchanged
        elif action == "replace":
            kept = body.rsplit(b"\n", 2)[0] + b"\n"  # all but the synthetic last chunk
            assert canonical(events).startswith(kept)
        else:
            assert error is not None
            assert text.startswith(error[1])
            assert canonical(events).startswith(body)
    # Refusals found at every checkpoint and at the end, and clean streams between them.
    assert len(got) // 10 < refused < len(got) - len(got) // 10


@pytest.mark.parametrize("action", ["flag", "replace", "raise"])
async def test_200_interleaved_async_streams_through_one_client(action: str) -> None:
    upstream = Upstream(STREAMS)
    guard = Guard(policy(action), scanner=NoRefusalScanner(model="keyword"))
    client = upstream.client(GuardedAsyncOpenAI, guard)

    async def consume(i: int, interleave: bool) -> tuple[int, tuple[Any, ...]]:
        stream = await client.chat.completions.create(**request(i))
        chunks: list[Any] = []
        error: RefusalDetected | None = None
        try:
            async for chunk in stream:
                chunks.append(chunk)
                if interleave:
                    await asyncio.sleep(0)  # hand over to the other streams at every chunk
        except RefusalDetected as exc:
            error = exc
        return i, outcome(chunks, stream, error)

    alone = dict([await consume(i, False) for i in range(STREAMS)])
    together = dict(await asyncio.gather(*(consume(i, True) for i in range(STREAMS))))

    check_streams(upstream, action, together, alone)
    assert len(upstream.bodies) == 2 * STREAMS
    assert all(body.closed or body.sent == len(body.chunks) for body in upstream.bodies)
    await client.close()


@pytest.mark.parametrize("action", ["flag"])
def test_200_streams_read_round_robin_through_one_sync_client(action: str) -> None:
    """One thread, 200 open streams, one chunk from each in turn: the worst interleaving."""
    upstream = Upstream(STREAMS)
    guard = Guard(policy(action), scanner=NoRefusalScanner(model="keyword"))
    client = upstream.client(GuardedOpenAI, guard)

    def run(order: list[int]) -> dict[int, tuple[Any, ...]]:
        streams = {i: client.chat.completions.create(**request(i)) for i in order}
        iters = {i: iter(s) for i, s in streams.items()}
        chunks: dict[int, list[Any]] = {i: [] for i in order}
        errors: dict[int, RefusalDetected | None] = dict.fromkeys(order)
        live = list(order)
        while live:
            for i in list(live):
                try:
                    chunks[i].append(next(iters[i]))
                except StopIteration:
                    live.remove(i)
                except RefusalDetected as exc:
                    errors[i] = exc
                    live.remove(i)
        return {i: outcome(chunks[i], streams[i], errors[i]) for i in order}

    alone = {i: run([i])[i] for i in range(STREAMS)}
    shuffled = list(range(STREAMS))
    random.Random(8).shuffle(shuffled)
    check_streams(upstream, action, run(shuffled), alone)
    client.close()


def test_64_threads_streaming_through_one_sync_client() -> None:
    upstream = Upstream(64)
    guard = Guard(policy("flag"), scanner=NoRefusalScanner(model="keyword"))
    client = upstream.client(GuardedOpenAI, guard)
    barrier = threading.Barrier(64, timeout=60)

    def consume(i: int) -> tuple[int, tuple[Any, ...]]:
        stream = client.chat.completions.create(**request(i))
        barrier.wait()
        return i, outcome(list(stream), stream, None)

    alone = dict(consume_alone(client, i) for i in range(64))
    with ThreadPoolExecutor(64) as pool:
        got = dict(pool.map(consume, range(64)))
    check_streams(upstream, "flag", got, alone)
    assert len(scan_threads()) <= MAX_WORKERS <= 16
    client.close()


def consume_alone(client: Any, i: int) -> tuple[int, tuple[Any, ...]]:
    stream = client.chat.completions.create(**request(i))
    return i, outcome(list(stream), stream, None)


# -- one LangChain handler, 200 interleaved runs ------------------------------------------------


class EchoStreamModel(BaseChatModel):
    """Streams ``case_text(i)`` for the prompt ``ask i``, in pieces of its own size."""

    @property
    def _llm_type(self) -> str:
        return "echo-stream-fake"

    @staticmethod
    def _pieces(messages: list[BaseMessage]) -> list[str]:
        i = int(str(messages[-1].content).split()[-1])
        return pieces(case_text(i), 16 + i % 17)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(self._pieces(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in self._pieces(messages):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for piece in self._pieces(messages):
            await asyncio.sleep(0)  # a network read: other runs go on meanwhile
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def run_key(verdict: RunVerdict) -> tuple[Any, ...]:
    return (
        tuple(key(r) for r in verdict.results),
        verdict.action,
        verdict.refused,
        verdict.streamed,
        verdict.prompt_known,
    )


def test_200_runs_interleaved_callback_by_callback() -> None:
    """The handler's callbacks called directly, the runs' events shuffled together."""
    scanner = NoRefusalScanner(model="keyword")

    def events(i: int, run_id: uuid.UUID) -> list[tuple[str, Any]]:
        text = case_text(i)
        out: list[tuple[str, Any]] = [("start", [[HumanMessage(f"ask {i}")]])]
        for piece in pieces(text, 16 + i % 17):
            out.append(("token", ChatGenerationChunk(message=AIMessageChunk(content=piece))))
        out.append(("end", LLMResult(generations=[[ChatGeneration(message=AIMessage(text))]])))
        return out

    def play(handler: NoRefusalCallbackHandler, run_id: uuid.UUID, event: tuple[str, Any]) -> None:
        kind, value = event
        if kind == "start":
            handler.on_chat_model_start({}, value, run_id=run_id)
        elif kind == "token":
            handler.on_llm_new_token(value.text, chunk=value, run_id=run_id)
        else:
            handler.on_llm_end(value, run_id=run_id)

    ids = [uuid.uuid4() for _ in range(STREAMS)]
    alone = NoRefusalCallbackHandler(guard=Guard(policy("flag"), scanner=scanner))
    for i, run_id in enumerate(ids):
        for event in events(i, run_id):
            play(alone, run_id, event)

    shared = NoRefusalCallbackHandler(guard=Guard(policy("flag"), scanner=scanner))
    queues = {run_id: events(i, run_id) for i, run_id in enumerate(ids)}
    rng = random.Random(8)
    while queues:  # a random interleaving that keeps each run's own order
        run_id = rng.choice(list(queues))
        play(shared, run_id, queues[run_id].pop(0))
        if not queues[run_id]:
            del queues[run_id]

    assert {r: run_key(v) for r, v in shared.results.items()} == {
        r: run_key(v) for r, v in alone.results.items()
    }
    refused = [i for i, r in enumerate(ids) if shared.results[r].refused]
    assert 20 < len(refused) < STREAMS - 20
    for i in refused:
        assert case_text(i).startswith(shared.results[ids[i]].result.sanitized)
    assert shared.in_flight == 0


@pytest.mark.parametrize(
    ("action", "handler_class"),
    [
        ("flag", NoRefusalCallbackHandler),
        ("raise", NoRefusalCallbackHandler),
        ("raise", AsyncNoRefusalCallbackHandler),
    ],
)
async def test_200_concurrent_langchain_streams_through_one_handler(
    action: str, handler_class: type[Handler]
) -> None:
    """The sync handler runs in LangChain's worker threads, the async one on the loop."""
    model = EchoStreamModel()
    scanner = NoRefusalScanner(model="keyword")

    async def consume(
        handler: Handler, i: int
    ) -> tuple[int, uuid.UUID, list[str], RefusalDetected | None]:
        run_id = uuid.uuid4()
        got: list[str] = []
        config: Any = {"callbacks": [handler], "run_id": run_id}
        try:
            async for chunk in model.astream(f"ask {i}", config=config):
                if chunk.content:  # langchain-core ends a stream with an empty chunk of its own
                    got.append(str(chunk.content))
        except RefusalDetected as exc:
            return i, run_id, got, exc
        return i, run_id, got, None

    def summary(
        handler: Handler, runs: list[tuple[int, uuid.UUID, list[str], Any]]
    ) -> dict[int, tuple[Any, ...]]:
        out = {}
        for i, run_id, got, error in runs:
            expected = pieces(case_text(i), 16 + i % 17)
            if error is None:
                assert got == expected  # every chunk, once, in order
            else:
                assert expected[: len(got)] == got
                assert case_text(i).startswith(error.output)
            out[i] = (
                run_key(handler.results[run_id]),
                got,
                None if error is None else error.output,
            )
        return out

    alone = handler_class(guard=Guard(policy(action), scanner=scanner))
    expected = summary(alone, [await consume(alone, i) for i in range(STREAMS)])
    shared = handler_class(guard=Guard(policy(action), scanner=scanner))
    got = summary(shared, list(await asyncio.gather(*(consume(shared, i) for i in range(STREAMS)))))

    assert got == expected
    assert 20 < sum(v[0][2] for v in got.values()) < STREAMS - 20
    assert shared.in_flight == 0
