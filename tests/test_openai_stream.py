"""The OpenAI integration on streams: hold-back, verdicts, chunk order, bounded scans."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx2
import openai
import pydantic
import pytest
from _openai_fakes import (
    ANSWER,
    MESSAGES,
    REFUSAL,
    REPLACEMENT,
    CountingScanner,
    FakeServer,
    chat_chunk,
    chat_stream,
    done,
    kind,
    make_guard,
    new_client,
    no_network,
    pieces,
    responses_stream,
    scanner_of,
    sse,
)
from norefusal import RefusalDetected, Signal
from norefusal.integrations.openai import (
    GuardedAsyncStream,
    GuardedStream,
)
from norefusal.policies import Guard, Policy

__all__ = ["kind", "no_network"]  # fixtures: sync and async twins; no network

#: A refusal at the start of a long stream: caught at the first checkpoint.
EARLY = REFUSAL + " If you have any other questions, I'd be glad to help with those." * 6
#: 2,000 characters of answer, then a refusal.
LATE = ("Paris has many museums and parks to visit. " * 47)[:2000] + " " + REFUSAL
LONG_ANSWER = "Paris has many museums and parks to visit. " * 60


async def drain(stream: Any, limit: int | None = None) -> tuple[list[Any], Exception | None]:
    """Read ``stream`` (sync or async) to its end, or ``limit`` items; keep what it raised."""
    got: list[Any] = []
    try:
        if hasattr(stream, "__aiter__"):
            async for item in stream:
                got.append(item)
                if limit is not None and len(got) >= limit:
                    break
        else:
            for item in stream:
                got.append(item)
                if limit is not None and len(got) >= limit:
                    break
    except Exception as exc:
        return got, exc
    return got, None


async def chat_stream_call(client: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", MESSAGES)
    kwargs.setdefault("model", "gpt-4o-mini")
    return await done(client.chat.completions.create(stream=True, **kwargs))


def dicts(chunks: list[Any]) -> list[dict[str, Any]]:
    return [chunk.to_dict() for chunk in chunks]


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- chat completions, stream=True ------------------------------------------------------------


async def test_compliant_stream_passes_every_chunk_unchanged_and_in_order(kind: str) -> None:
    events = chat_stream(LONG_ANSWER, size=7)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("raise"))
    stream = await chat_stream_call(client)
    assert isinstance(stream, GuardedStream if kind == "sync" else GuardedAsyncStream)
    assert isinstance(stream, openai.Stream if kind == "sync" else openai.AsyncStream)
    got, error = await drain(stream)
    assert error is None
    assert dicts(got) == events
    assert (stream.verdict, stream.action) == (None, None)
    # Bounded: one scan per checkpoint (40, 160, 480) and one final scan of the whole text.
    scanned = scanner_of(client).scanned
    assert [len(t) for t in scanned] == [42, 161, 483, len(LONG_ANSWER)]
    assert scanned[-1] == LONG_ANSWER


async def test_refusal_at_the_start_raises_before_the_consumer_sees_it(kind: str) -> None:
    events = chat_stream(EARLY, size=10)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("raise"))
    stream = await chat_stream_call(client)
    got, error = await drain(stream)
    assert isinstance(error, RefusalDetected)
    assert error.output == EARLY[:40]
    # Only the role chunk, which carries no text, reached the consumer.
    assert dicts(got) == events[:1]
    # The upstream response was closed at the verdict, long before its end.
    (body,) = server.streams
    assert body.closed
    assert body.sent < len(body.chunks) // 2
    assert stream.response.is_closed
    assert stream.action == "raise"


async def test_refusal_at_the_start_is_replaced_by_one_synthetic_chunk(kind: str) -> None:
    events = chat_stream(EARLY, size=10)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("replace", replacement=REPLACEMENT))
    stream = await chat_stream_call(client)
    got, error = await drain(stream)
    assert error is None
    assert dicts(got[:1]) == events[:1]
    (synthetic,) = got[1:]
    assert synthetic.choices[0].delta.content == REPLACEMENT
    assert synthetic.choices[0].finish_reason == "stop"
    assert synthetic.id == events[0]["id"]
    assert server.streams[0].closed
    assert stream.action == "replace"
    assert stream.verdict is not None
    assert stream.verdict.is_refusal


async def test_flag_lets_the_whole_stream_through_and_records_it(kind: str) -> None:
    events = chat_stream(EARLY, size=10)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("flag"))
    stream = await chat_stream_call(client)
    got, error = await drain(stream)
    assert error is None
    assert dicts(got) == events
    assert stream.action == "flag"
    assert stream.verdict is not None
    assert stream.verdict.is_refusal
    # Decided at the first checkpoint; nothing is scanned again.
    assert len(scanner_of(client).scanned) == 1
    assert client.guard.metrics.snapshot()["refusals"] == 1


async def test_refusal_after_2000_characters_is_caught_by_the_final_scan(kind: str) -> None:
    events = chat_stream(LATE, size=25)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("raise"))
    stream = await chat_stream_call(client)
    got, error = await drain(stream)
    assert isinstance(error, RefusalDetected)
    assert error.output == LATE
    # Past the hold-back window every chunk had already passed, in order.
    assert dicts(got) == events
    assert len(scanner_of(client).scanned) == 4


async def test_refusal_after_2000_characters_replace_appends_the_replacement(kind: str) -> None:
    events = chat_stream(LATE, size=25)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("replace", replacement=REPLACEMENT))
    got, error = await drain(await chat_stream_call(client))
    assert error is None
    assert dicts(got[:-1]) == events
    assert got[-1].choices[0].delta.content == REPLACEMENT


async def test_a_short_refusal_is_held_to_the_end_and_never_shown(kind: str) -> None:
    events = chat_stream(REFUSAL, size=5)  # shorter than the first checkpoint
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("raise"))
    got, error = await drain(await chat_stream_call(client))
    assert isinstance(error, RefusalDetected)
    assert text_of(got) == ""


async def test_holdback_zero_passes_chunks_at_once(kind: str) -> None:
    events = chat_stream(EARLY, size=10)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("raise"), stream_holdback=0)
    got, error = await drain(await chat_stream_call(client))
    assert isinstance(error, RefusalDetected)
    # Every chunk up to the one that crossed the first checkpoint had been delivered.
    assert dicts(got) == events[:4]


async def test_partially_consumed_then_closed(kind: str) -> None:
    events = chat_stream(LONG_ANSWER, size=10)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("raise"), stream_holdback=0)
    stream = await chat_stream_call(client)
    got, error = await drain(stream, limit=5)
    assert error is None
    await done(stream.close())
    assert dicts(got) == events[:5]
    assert server.streams[0].closed
    assert server.streams[0].sent < len(events)
    # Closed early: no final scan of a text that never ended.
    assert scanner_of(client).scanned == [LONG_ANSWER[:40]]


async def test_delta_refusal_is_a_provider_signal(kind: str) -> None:
    events = [chat_chunk(role="assistant", refusal="")]
    events += [chat_chunk(refusal=p) for p in pieces(REFUSAL, 8)]
    events.append(chat_chunk(finish_reason="stop"))
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("raise"))
    got, error = await drain(await chat_stream_call(client))
    assert isinstance(error, RefusalDetected)
    assert error.result.signal is Signal.PROVIDER
    assert error.result.detail == "delta.refusal"
    assert dicts(got) == events[:1]
    assert scanner_of(client).scanned == []


async def test_content_filter_finish_reason_in_a_stream(kind: str) -> None:
    events = chat_stream("Here is how", size=5, finish_reason="content_filter")
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("raise"))
    got, error = await drain(await chat_stream_call(client))
    assert isinstance(error, RefusalDetected)
    assert error.result.detail == "finish_reason=content_filter"
    assert text_of(got) == ""


async def test_n2_stream_with_one_refused_choice(kind: str) -> None:
    a, b = chat_stream(LONG_ANSWER, size=20, index=0), chat_stream(EARLY, size=20, index=1)
    events = [e for pair in zip(a, b, strict=False) for e in pair]
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("raise"))
    got, error = await drain(await chat_stream_call(client, n=2))
    assert isinstance(error, RefusalDetected)
    assert error.output == EARLY[:40]
    assert dicts(got) == events[:2]  # the two role chunks


async def test_large_stream_keeps_scans_bounded(kind: str) -> None:
    text = "Paris is lovely in spring and in autumn. " * 5_000  # 205,000 characters
    events = chat_stream(text, size=2_000)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("raise"))
    got, error = await drain(await chat_stream_call(client))
    assert error is None
    assert text_of(got) == text
    # The first chunk crosses every checkpoint at once: one scan for them, one final scan.
    assert [len(t) for t in scanner_of(client).scanned] == [2_000, len(text)]


# -- bad streams ------------------------------------------------------------------------------


async def test_stream_without_done_ends_and_is_scanned_once(kind: str) -> None:
    events = chat_stream(EARLY[:30], size=10)
    server = FakeServer().add(sse=sse(events, done=False))
    client = new_client(server, kind, guard=make_guard("flag"))
    got, error = await drain(await chat_stream_call(client))
    assert error is None
    assert dicts(got) == events
    assert scanner_of(client).scanned == [EARLY[:30]]


async def test_malformed_sse_raises_the_clients_error_after_the_chunks_before_it(kind: str) -> None:
    events = chat_stream(ANSWER, size=10)[:3]
    body = [*sse(events, done=False), b"data: {not json\n\n", *sse(events[:1])]
    server = FakeServer().add(sse=body)
    client = new_client(server, kind, guard=make_guard("raise"))
    got, error = await drain(await chat_stream_call(client))
    assert isinstance(error, json.JSONDecodeError)
    # The chunks held back before the error are not lost.
    assert dicts(got) == events
    assert server.streams[0].closed


async def test_error_event_in_a_stream_passes_through(kind: str) -> None:
    events = chat_stream(ANSWER, size=10)[:2]
    body = [*sse(events, done=False), *sse([{"error": {"message": "overloaded"}}])]
    server = FakeServer().add(sse=body)
    client = new_client(server, kind, guard=make_guard("raise"))
    got, error = await drain(await chat_stream_call(client))
    assert isinstance(error, openai.APIError)
    assert dicts(got) == events


async def test_timeout_mid_stream_raises_the_clients_error(kind: str) -> None:
    events = chat_stream(ANSWER, size=10)[:4]
    server = FakeServer().add(sse=sse(events, done=False), then=httpx2.ReadTimeout("stalled"))
    client = new_client(server, kind, guard=make_guard("flag"))
    got, error = await drain(await chat_stream_call(client))
    assert isinstance(error, openai.APITimeoutError)
    assert dicts(got) == events
    assert scanner_of(client).scanned == []


async def test_http_500_on_a_stream_request_passes_through(kind: str) -> None:
    server = FakeServer().add(status=500, json={"error": {"message": "boom"}})
    client = new_client(server, kind, guard=make_guard("raise"))
    with pytest.raises(openai.InternalServerError):
        await chat_stream_call(client)


# -- the .stream() helpers --------------------------------------------------------------------


async def helper_events(client: Any, kind: str, **kwargs: Any) -> tuple[list[Any], Any, Any]:
    """Events of ``chat.completions.stream()``, the error it raised, and its final completion."""
    manager = client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES, **kwargs)
    if kind == "sync":
        with manager as stream:
            got, error = await drain(stream)
            final = None if error else stream.get_final_completion()
    else:
        async with manager as stream:
            got, error = await drain(stream)
            final = None if error else await stream.get_final_completion()
    return got, error, final


async def test_stream_helper_compliance(kind: str) -> None:
    server = FakeServer().add(sse=sse(chat_stream(LONG_ANSWER, size=50)))
    client = new_client(server, kind, guard=make_guard("raise"))
    got, error, final = await helper_events(client, kind)
    assert error is None
    assert final.choices[0].message.content == LONG_ANSWER
    deltas = "".join(e.delta for e in got if e.type == "content.delta")
    assert deltas == LONG_ANSWER


async def test_stream_helper_refusal_raises(kind: str) -> None:
    server = FakeServer().add(sse=sse(chat_stream(EARLY, size=10)))
    client = new_client(server, kind, guard=make_guard("raise"))
    got, error, _ = await helper_events(client, kind)
    assert isinstance(error, RefusalDetected)
    assert "".join(e.delta for e in got if e.type == "content.delta") == ""
    assert server.streams[0].closed


async def test_stream_helper_replace_gives_the_replacement_as_the_final_text(kind: str) -> None:
    server = FakeServer().add(sse=sse(chat_stream(EARLY, size=10)))
    client = new_client(server, kind, guard=make_guard("replace", replacement=REPLACEMENT))
    got, error, final = await helper_events(client, kind)
    assert error is None
    assert final.choices[0].message.content == REPLACEMENT
    assert "".join(e.delta for e in got if e.type == "content.delta") == REPLACEMENT


async def test_stream_helper_closed_early(kind: str) -> None:
    server = FakeServer().add(sse=sse(chat_stream(LONG_ANSWER, size=10)))
    client = new_client(server, kind, guard=make_guard("raise"), stream_holdback=0)
    manager = client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES)
    if kind == "sync":
        with manager as stream:
            got, _ = await drain(stream, limit=3)
    else:
        async with manager as stream:
            got, _ = await drain(stream, limit=3)
    assert len(got) == 3
    assert server.streams[0].closed
    assert server.streams[0].sent < len(server.streams[0].chunks)


# -- responses API streams --------------------------------------------------------------------


async def test_responses_stream_compliance_passes_every_event(kind: str) -> None:
    events = responses_stream(LONG_ANSWER, size=40)
    server = FakeServer().add(sse=sse(events, named=True))
    client = new_client(server, kind, guard=make_guard("raise"))
    stream = await done(client.responses.create(model="gpt-4o", input="Hi", stream=True))
    got, error = await drain(stream)
    assert error is None
    assert [e.type for e in got] == [e["type"] for e in events]
    assert [e.sequence_number for e in got] == [e["sequence_number"] for e in events]
    assert len(scanner_of(client).scanned) == 4


async def test_responses_stream_refusal_delta_raises(kind: str) -> None:
    events = responses_stream("", refusal=REFUSAL)
    server = FakeServer().add(sse=sse(events, named=True))
    client = new_client(server, kind, guard=make_guard("raise"))
    stream = await done(client.responses.create(model="gpt-4o", input="Hi", stream=True))
    got, error = await drain(stream)
    assert isinstance(error, RefusalDetected)
    assert error.result.detail == "refusal content item"
    assert "response.refusal.delta" not in [e.type for e in got]


async def test_responses_stream_helper_replace(kind: str) -> None:
    events = responses_stream(EARLY, size=10)
    server = FakeServer().add(sse=sse(events, named=True))
    client = new_client(server, kind, guard=make_guard("replace", replacement=REPLACEMENT))
    manager = client.responses.stream(model="gpt-4o", input="Hi")
    if kind == "sync":
        with manager as stream:
            got, error = await drain(stream)
            final = stream.get_final_response()
    else:
        async with manager as stream:
            got, error = await drain(stream)
            final = await stream.get_final_response()
    assert error is None
    assert final.output_text == REPLACEMENT
    # The events without text had passed; the text was held, then replaced by the final event.
    assert [e.type for e in got] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.completed",
    ]
    assert final.output[0].id == events[2]["item"]["id"]
    assert server.streams[0].closed


# -- raw streamed responses -------------------------------------------------------------------


async def test_raw_streamed_response_hands_out_the_guarded_stream(kind: str) -> None:
    server = FakeServer().add(sse=sse(chat_stream(EARLY, size=10)))
    client = new_client(server, kind, guard=make_guard("raise"))
    raw = await done(
        client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
    )
    assert raw.status_code == 200
    stream = raw.parse()
    assert isinstance(stream, GuardedStream if kind == "sync" else GuardedAsyncStream)
    _, error = await drain(stream)
    assert isinstance(error, RefusalDetected)


def test_counting_scanner_is_the_keyword_model() -> None:
    assert CountingScanner().model_name == "keyword"


async def test_responses_stream_content_filter_incompletion(kind: str) -> None:
    events = responses_stream("Here is how", size=5)[:-2]
    incomplete = dict(
        events[0]["response"], status="incomplete", incomplete_details={"reason": "content_filter"}
    )
    events.append({"type": "response.incomplete", "sequence_number": 99, "response": incomplete})
    server = FakeServer().add(sse=sse(events, named=True))
    client = new_client(server, kind, guard=make_guard("raise"))
    stream = await done(client.responses.create(model="gpt-4o", input="Hi", stream=True))
    got, error = await drain(stream)
    assert isinstance(error, RefusalDetected)
    assert error.result.detail == "incomplete_details.reason=content_filter"
    assert "response.output_text.delta" not in [e.type for e in got]


class City(pydantic.BaseModel):
    city: str


async def test_structured_stream_replace_puts_the_replacement_in_refusal(kind: str) -> None:
    server = FakeServer().add(sse=sse(chat_stream(EARLY, size=10)))
    client = new_client(server, kind, guard=make_guard("replace", replacement=REPLACEMENT))
    _got, error, final = await helper_events(client, kind, response_format=City)
    assert error is None
    message = final.choices[0].message
    assert (message.refusal, message.parsed) == (REPLACEMENT, None)


async def test_retry_policy_on_a_stream_applies_its_final_action(kind: str) -> None:
    server = FakeServer().add(sse=sse(chat_stream(EARLY, size=10)))
    client = new_client(server, kind, guard=make_guard("retry", retries=2, final_action="raise"))
    _, error = await drain(await chat_stream_call(client))
    assert isinstance(error, RefusalDetected)
    assert len(server.requests) == 1  # a stream already returned is never restarted


async def test_malformed_chunk_under_flag_passes_through(kind: str) -> None:
    events = chat_stream(ANSWER, size=20)
    odd = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"finish_reason": None}, {"index": 0}],
    }
    events.insert(2, odd)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=make_guard("flag"))
    got, error = await drain(await chat_stream_call(client))
    assert error is None
    assert dicts(got) == events
    assert scanner_of(client).scanned[-1] == ANSWER


class HangingScanner(CountingScanner):
    """Hangs on every scan until released: stands for a stuck model."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def scan(self, prompt: str | None, output: str | None) -> Any:
        self.release.wait(30)
        return super().scan(prompt, output)


async def test_a_hanging_scanner_does_not_hang_the_stream(kind: str) -> None:
    scanner = HangingScanner()
    policy = Policy.model_validate(
        {"name": "t", "action": "raise", "timeout_s": 0.2, "on_error": "allow"}
    )
    events = chat_stream(EARLY, size=10)
    server = FakeServer().add(sse=sse(events))
    client = new_client(server, kind, guard=Guard(policy, scanner=scanner))
    started = time.monotonic()
    try:
        got, error = await drain(await chat_stream_call(client))
    finally:
        scanner.release.set()
    assert time.monotonic() - started < 10  # each scan gave up after timeout_s
    # The policy says allow on error: everything passes, in order.
    assert error is None
    assert dicts(got) == events
