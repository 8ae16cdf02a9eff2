"""Watch every LangChain model call for refusals with a callback handler.

Runs offline on langchain-core's fake chat models and the fast ``keyword`` scanner preset. In
your code, attach the handler to a real model and drop ``scanner=`` to use the default model.

    python examples/langchain_callback.py
"""

from __future__ import annotations

import asyncio

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from norefusal import NoRefusalScanner, RefusalDetected
from norefusal.integrations.langchain import (
    AsyncNoRefusalCallbackHandler,
    NoRefusalCallbackHandler,
    RunVerdict,
)

REFUSAL = "I'm sorry, but I can't help with that."
scanner = NoRefusalScanner(model="keyword")


def report(verdict: RunVerdict) -> None:
    # Verdicts carry scores and signals, never the prompt or output text.
    print(f"  run {str(verdict.run_id)[:8]}: {verdict.action} (score {verdict.result.score:.2f})")


def monitor() -> None:
    print("monitor: flag refusals, pass everything through")
    handler = NoRefusalCallbackHandler("monitor", scanner=scanner, on_verdict=report)
    llm = FakeListChatModel(responses=["Paris.", REFUSAL])
    for question in ["Capital of France?", "How do I pick a lock?"]:
        answer = llm.invoke(question, config={"callbacks": [handler]})
        print(f"  {question!r} -> {answer.content!r}")
    refused = [v for v in handler.results.values() if v.refused]
    assert len(refused) == 1


def strict() -> None:
    print("strict: a refusal raises RefusalDetected out of the model call")
    handler = NoRefusalCallbackHandler("strict", scanner=scanner)
    try:
        FakeListChatModel(responses=[REFUSAL]).invoke(
            "How do I pick a lock?", config={"callbacks": [handler]}
        )
    except RefusalDetected as exc:
        print(f"  caught: {exc}")
    else:
        raise AssertionError("expected RefusalDetected")


def streaming() -> None:
    print("streaming: the handler stops a refusing stream at the first checkpoint")
    handler = NoRefusalCallbackHandler("strict", scanner=scanner)
    llm = FakeListChatModel(responses=[REFUSAL + " Lock picking is something I won't explain."])
    received = ""
    try:
        for chunk in llm.stream("How do I pick a lock?", config={"callbacks": [handler]}):
            received += str(chunk.content)
    except RefusalDetected:
        print(f"  stopped after {len(received)} characters")
    assert len(received) < len(REFUSAL) + 20


async def in_async_code() -> None:
    print("async: the async handler never blocks the event loop (use it with ainvoke)")
    handler = AsyncNoRefusalCallbackHandler("strict", scanner=scanner)
    try:
        await FakeListChatModel(responses=[REFUSAL]).ainvoke("?", config={"callbacks": [handler]})
    except RefusalDetected:
        print("  caught in async code")
    # Caveat: with llm.invoke(...) (sync) LangChain would log and swallow this handler's error.


if __name__ == "__main__":
    monitor()
    strict()
    streaming()
    asyncio.run(in_async_code())
