"""Streamed OpenAI answers checked as they flow, sync and async.

The guard holds back the first characters of a stream (``stream_holdback``, 160 by default)
until it has cleared them, so a refusal at the start never reaches your user; after that,
chunks pass through unchanged. The whole text is checked once more at the end.

Runs offline: ``fake_api`` below streams like the Chat Completions API. In your code, drop
``base_url`` and ``http_client``.

    python examples/openai_streaming.py
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
from norefusal import NoRefusalScanner, RefusalDetected
from norefusal.integrations.openai import GuardedAsyncOpenAI, GuardedOpenAI
from norefusal.policies import Guard

ANSWER = "Paris is the capital of France. " * 12
REFUSAL = "I'm sorry, but I can't help with that. I'd be glad to help with something else."


def sse_chunk(**delta: str) -> bytes:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


def fake_api(request: httpx2.Request) -> httpx2.Response:
    """Streams the answer in 12-character chunks; refuses anything about lock picking."""
    question = json.loads(request.content)["messages"][-1]["content"]
    text = REFUSAL if "lock" in question else ANSWER
    body = [sse_chunk(role="assistant", content="")]
    body += [sse_chunk(content=text[i : i + 12]) for i in range(0, len(text), 12)]
    body.append(b"data: [DONE]\n\n")
    return httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=b"".join(body)
    )


def offline(*, is_async: bool = False) -> dict[str, Any]:
    transport = httpx2.MockTransport(fake_api)
    http = (
        httpx2.AsyncClient(transport=transport) if is_async else httpx2.Client(transport=transport)
    )
    return {"api_key": "sk-offline", "base_url": "http://fake-openai/v1", "http_client": http}


def stream(client: GuardedOpenAI, question: str) -> str:
    """What the user sees: the streamed chunks' text, joined."""
    chunks = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question}], stream=True
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks)


async def stream_async(client: GuardedAsyncOpenAI, question: str) -> str:
    """The same with the async client's ``.stream()`` helper and its typed events."""
    shown = ""
    async with client.chat.completions.stream(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
    ) as events:
        async for event in events:
            if event.type == "content.delta":
                shown += event.delta
    return shown


def main() -> None:
    # The keyword scanner keeps this example fast; drop `scanner=` for the embedded classifier.
    scanner = NoRefusalScanner(model="keyword")

    strict = GuardedOpenAI(guard=Guard("strict", scanner=scanner), **offline())
    print("strict, an answer:")
    shown = stream(strict, "What is the capital of France?")
    print(f"  user saw the answer, {len(shown)} characters: {shown[:48]!r}...")
    print("strict, a refusal:")
    try:
        stream(strict, "How do I pick a lock?")
    except RefusalDetected as refusal:
        # Raised before any of the refusal's text reached the user.
        print(f"  refused (signal={refusal.result.signal.value}); the user saw nothing")

    polite = GuardedOpenAI(guard=Guard("fallback-message", scanner=scanner), **offline())
    print("fallback-message, a refusal:")
    shown = stream(polite, "How do I pick a lock?")
    # None of the refusal's text: the policy's replacement arrives as one final chunk.
    print(f"  user saw the policy's replacement: {shown!r}")

    print("async, the .stream() helper, fallback-message, a refusal:")
    aclient = GuardedAsyncOpenAI(
        guard=Guard("fallback-message", scanner=scanner), **offline(is_async=True)
    )
    shown = asyncio.run(stream_async(aclient, "How do I pick a lock?"))
    print(f"  user saw the policy's replacement: {shown!r}")


if __name__ == "__main__":
    main()
