"""Catch refusals in OpenAI calls by changing one line: GuardedOpenAI instead of OpenAI.

Runs offline: a tiny fake of the OpenAI API (``fake_api`` below) answers every request. In your
code, drop ``base_url`` and ``http_client`` and set ``OPENAI_API_KEY`` as usual.

    python examples/openai_quickstart.py
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
from norefusal import NoRefusalScanner, RefusalDetected
from norefusal.integrations.openai import GuardedOpenAI, guard, last_outcome
from norefusal.policies import Guard
from openai import OpenAI
from pydantic import BaseModel

REFUSAL = "I'm sorry, but I can't help with that."


def fake_api(request: httpx2.Request) -> httpx2.Response:
    """Answers like the Chat Completions API: refuses anything about lock picking."""
    body = json.loads(request.content)
    question = body["messages"][-1]["content"]
    structured = "response_format" in body
    if "lock" not in question:
        content, refusal = ('{"city": "Paris"}' if structured else "Paris."), None
    elif structured:  # structured outputs refuse in their own field
        content, refusal = None, REFUSAL
    else:
        content, refusal = REFUSAL, None
    message = {"role": "assistant", "content": content, "refusal": refusal}
    return httpx2.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1741569952,
            "model": body["model"],
            "choices": [
                {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
            ],
        },
    )


def offline() -> dict[str, Any]:
    """Client options that point at the fake API instead of api.openai.com."""
    return {
        "api_key": "sk-offline",
        "base_url": "http://fake-openai/v1",
        "http_client": httpx2.Client(transport=httpx2.MockTransport(fake_api)),
    }


def ask(client: OpenAI, question: str) -> str | None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
    )
    return completion.choices[0].message.content


class City(BaseModel):
    city: str


def main() -> None:
    # The keyword scanner keeps this example fast and deterministic; drop `scanner=` to use the
    # embedded classifier, which is more accurate.
    scanner = NoRefusalScanner(model="keyword")

    # 1. "strict": a refusal raises RefusalDetected, carrying the verdict.
    client = GuardedOpenAI(guard=Guard("strict", scanner=scanner), **offline())
    print("answer:", ask(client, "What is the capital of France?"))
    try:
        ask(client, "How do I pick a lock?")
    except RefusalDetected as refusal:
        print(f"refused: score={refusal.result.score:.2f}, signal={refusal.result.signal.value}")

    # 2. Structured outputs: the API's own refusal field decides, no classifier needed.
    try:
        client.chat.completions.parse(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Which city has the best lock shops?"}],
            response_format=City,
        )
    except RefusalDetected as refusal:
        print(f"structured refusal: decided by {refusal.result.detail}")

    # 3. An existing client, guarded with "fallback-message": the refusal is replaced.
    existing = OpenAI(**offline())
    polite = guard(existing, guard=Guard("fallback-message", scanner=scanner))
    print("replaced:", ask(polite, "How do I pick a lock?"))
    outcome = last_outcome()
    assert outcome is not None
    print(f"outcome: action={outcome.action}, refused={outcome.refused}")
    print("original client, unguarded:", ask(existing, "How do I pick a lock?"))


if __name__ == "__main__":
    main()
