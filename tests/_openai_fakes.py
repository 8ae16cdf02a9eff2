"""Recorded-shape OpenAI bodies (JSON and SSE) served to the real client over MockTransport."""

from __future__ import annotations

import inspect
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from norefusal import NoRefusalScanner
from norefusal.integrations.openai import GuardedAsyncOpenAI, GuardedOpenAI
from norefusal.policies import Guard, Policy

BASE_URL = "http://testserver/v1"

REFUSAL = "I'm sorry, but I can't help with that."
ANSWER = "The capital of France is Paris. It sits on the Seine and has about two million people."


# -- no network ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that would open a real connection (only MockTransport may answer)."""

    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError("A test tried to reach the network; use the fake transport.")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(httpx2.HTTPTransport, "handle_request", refuse)
    monkeypatch.setattr(httpx2.AsyncHTTPTransport, "handle_async_request", refuse)


# -- JSON bodies ---------------------------------------------------------------------------------


def chat_choice(
    content: str | None,
    *,
    index: int = 0,
    refusal: str | None = None,
    finish_reason: str = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "refusal": refusal,
        "annotations": [],
    }
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish_reason}


def chat_completion(
    *choices: dict[str, Any], model: str = "gpt-4o-mini-2024-07-18"
) -> dict[str, Any]:
    """A ``chat.completion`` body as the API returns it."""
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": model,
        "choices": list(choices),
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


def response_body(
    *content: dict[str, Any],
    status: str = "completed",
    incomplete_reason: str | None = None,
    extra_output: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Responses API ``response`` body with one assistant message holding ``content``."""
    output: list[dict[str, Any]] = list(extra_output or [])
    if content:
        output.append(
            {
                "id": "msg_67ccd3acc8d48190a77525dc6de64b4104becb25c5c8c7b6",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": list(content),
            }
        )
    return {
        "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c5c8c7b6",
        "object": "response",
        "created_at": 1741476777,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "gpt-4o-2024-08-06",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 36,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 87,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 123,
        },
        "user": None,
        "metadata": {},
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def output_refusal(text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text}


# -- SSE bodies ----------------------------------------------------------------------------------


def sse(events: list[dict[str, Any]], *, done: bool = True, named: bool = False) -> list[bytes]:
    """``data:`` lines, one event per network chunk (``event:`` lines too when ``named``)."""
    out = []
    for event in events:
        head = f"event: {event['type']}\n" if named else ""
        out.append(f"{head}data: {json.dumps(event)}\n\n".encode())
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


def chat_chunk(
    index: int = 0,
    *,
    content: str | None = None,
    role: str | None = None,
    refusal: str | None = None,
    finish_reason: str | None = None,
    n: int = 1,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if refusal is not None:
        delta["refusal"] = refusal
    return {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_eb9dce56a8",
        "choices": [
            {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ],
    }


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def chat_stream(
    text: str, *, size: int = 10, finish_reason: str = "stop", index: int = 0
) -> list[dict[str, Any]]:
    """The chunks of one streamed choice: role, content pieces of ``size`` chars, finish."""
    chunks = [chat_chunk(index, role="assistant", content="")]
    chunks += [chat_chunk(index, content=p) for p in pieces(text, size)]
    chunks.append(chat_chunk(index, finish_reason=finish_reason))
    return chunks


def responses_stream(
    text: str, *, size: int = 10, refusal: str | None = None
) -> list[dict[str, Any]]:
    """The events of a streamed Responses API answer (text or refusal)."""
    body = response_body(status="in_progress")
    seq = iter(range(1000))
    item_id = "msg_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654"
    done_part = output_refusal(refusal) if refusal is not None else output_text(text)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "sequence_number": next(seq), "response": body},
        {"type": "response.in_progress", "sequence_number": next(seq), "response": body},
        {
            "type": "response.output_item.added",
            "sequence_number": next(seq),
            "output_index": 0,
            "item": {
                "id": item_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
        },
        {
            "type": "response.content_part.added",
            "sequence_number": next(seq),
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "part": output_refusal("") if refusal is not None else output_text(""),
        },
    ]
    if refusal is not None:
        events += [
            {
                "type": "response.refusal.delta",
                "sequence_number": next(seq),
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": p,
            }
            for p in pieces(refusal, size)
        ]
    else:
        events += [
            {
                "type": "response.output_text.delta",
                "sequence_number": next(seq),
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": p,
                "logprobs": [],
            }
            for p in pieces(text, size)
        ]
    item = {
        "id": item_id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [done_part],
    }
    final = response_body(done_part)
    final["output"] = [item]
    events += [
        {
            "type": "response.output_item.done",
            "sequence_number": next(seq),
            "output_index": 0,
            "item": item,
        },
        {"type": "response.completed", "sequence_number": next(seq), "response": final},
    ]
    return events


MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
]
REPLACEMENT = "This request could not be answered."


class CountingScanner(NoRefusalScanner):
    """The keyword scanner, recording every output it scans."""

    def __init__(self) -> None:
        super().__init__(model="keyword")
        self.scanned: list[str] = []
        self.prompts: list[str] = []

    def scan(self, prompt: str | None, output: str | None) -> Any:
        self.prompts.append(prompt or "")
        self.scanned.append(output or "")
        return super().scan(prompt, output)


def make_guard(action: str = "flag", **policy: Any) -> Guard:
    settings = {"name": f"test-{action}", "action": action, **policy}
    return Guard(Policy.model_validate(settings), scanner=CountingScanner())


def scanner_of(client: Any) -> CountingScanner:
    scanner = client.guard.scanner
    assert isinstance(scanner, CountingScanner)
    return scanner


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def new_client(server: FakeServer, kind: str, **options: Any) -> Any:
    return server.client(GuardedOpenAI if kind == "sync" else GuardedAsyncOpenAI, **options)


async def done(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


# -- the fake server -----------------------------------------------------------------------------


class RecordingStream(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A response body that records how much of it was read and whether it was closed."""

    def __init__(self, chunks: list[bytes], *, then: Exception | None = None) -> None:
        self.chunks = chunks
        self.then = then
        self.sent = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.closed:
                return
            self.sent += 1
            yield chunk
        if self.then is not None:
            raise self.then

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if self.closed:
                return
            self.sent += 1
            yield chunk
        if self.then is not None:
            raise self.then

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    sse: list[bytes] | None = None
    raw: bytes | None = None
    error: Exception | None = None
    then: Exception | None = None  # raised by a streamed body after its chunks


@dataclass
class FakeServer:
    """Answers requests in order from ``replies``; records each request body and stream."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    streams: list[RecordingStream] = field(default_factory=list)

    def add(self, **reply: Any) -> FakeServer:
        self.replies.append(Reply(**reply))
        return self

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append({"path": request.url.path, **json.loads(request.content or b"{}")})
        if not self.replies:
            raise AssertionError("The fake server got more requests than the test planned.")
        reply = self.replies.pop(0)
        if reply.error is not None:
            raise reply.error
        if reply.sse is not None:
            body = RecordingStream(reply.sse, then=reply.then)
            self.streams.append(body)
            return httpx2.Response(
                reply.status, headers={"content-type": "text/event-stream"}, stream=body
            )
        if reply.raw is not None:
            return httpx2.Response(
                reply.status, content=reply.raw, headers={"content-type": "application/json"}
            )
        return httpx2.Response(
            reply.status, json=reply.json, headers={"x-request-id": "req_fake_123"}
        )

    def sync_http(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handle))

    def async_http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle))

    def client(self, cls: Callable[..., Any], **options: Any) -> Any:
        """A client of class ``cls`` (sync or async) served by this fake."""
        is_async = "Async" in cls.__name__
        return cls(
            api_key="sk-test",
            base_url=BASE_URL,
            max_retries=0,
            http_client=self.async_http() if is_async else self.sync_http(),
            **options,
        )
