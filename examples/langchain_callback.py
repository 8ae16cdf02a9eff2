"""Watch every LangChain model call for refusals with a callback handler, and stop the refused ones.

What it shows, in order:

1. ``monitor``: the handler scans each run's output and reports a verdict per run (``pass`` or
   ``flag``), without changing anything; attach it to any model, no other code changes.
2. ``strict``: a refusal raises ``RefusalDetected`` out of ``llm.invoke``, for your code to catch.
3. streaming: under ``strict`` the handler stops a refusing stream at its first checkpoint.
4. async: the async handler raises out of ``ainvoke`` without blocking the event loop.

A handler raises through LangChain's own mechanism (``raise_error``), and LangChain logs every
exception a callback raises ("Error in NoRefusalCallbackHandler.on_llm_end callback") even
when it then hands it to the caller on purpose. :class:`IntendedRaises` below keeps those
intended raises out of your logs; any other callback error still logs.

Runs offline on langchain-core's fake chat models and the fast ``keyword`` scanner preset. In
your code, attach the handler to a real model and drop ``scanner=`` to use the default model.

    python examples/langchain_callback.py
"""

from __future__ import annotations

import asyncio
import logging

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from norefusal import NoRefusalScanner, RefusalDetected
from norefusal.integrations.langchain import (
    AsyncNoRefusalCallbackHandler,
    NoRefusalCallbackHandler,
    RunVerdict,
)

REFUSAL = "I'm sorry, but I can't help with that."
scanner = NoRefusalScanner(model="keyword")


class IntendedRaises(logging.Filter):
    """Drops LangChain's log line for a refusal that a norefusal handler raised on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        # LangChain logs ("Error in %s.%s callback: %s", handler class, event, repr(error)).
        return not (
            len(args) == 3
            and str(args[0]).endswith("NoRefusalCallbackHandler")
            and "RefusalDetected(" in str(args[2])
        )


logging.getLogger("langchain_core.callbacks.manager").addFilter(IntendedRaises())


def report(verdict: RunVerdict) -> None:
    # Verdicts carry scores and signals, never the prompt or output text.
    print(f"  run {verdict.run_id}: {verdict.action} (score {verdict.result.score:.2f})")


def monitor() -> None:
    print("1. monitor: a verdict per run, everything passed through")
    handler = NoRefusalCallbackHandler("monitor", scanner=scanner, on_verdict=report)
    llm = FakeListChatModel(responses=["Paris.", REFUSAL])
    for question in ["Capital of France?", "How do I pick a lock?"]:
        answer = llm.invoke(question, config={"callbacks": [handler]})
        print(f"  {question!r} -> {answer.content!r}")
    refused = [v for v in handler.results.values() if v.refused]
    assert len(refused) == 1


def strict() -> None:
    print("2. strict: a refusal raises RefusalDetected out of the model call")
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
    print("3. streaming: the strict handler stops a refusing stream at the first checkpoint")
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
    print("4. async: the async handler raises out of ainvoke, never blocking the event loop")
    handler = AsyncNoRefusalCallbackHandler("strict", scanner=scanner)
    try:
        await FakeListChatModel(responses=[REFUSAL]).ainvoke("?", config={"callbacks": [handler]})
    except RefusalDetected as exc:
        print(f"  caught in async code: {exc}")
    # Caveat: with llm.invoke(...) (sync) LangChain would log and swallow this handler's error.


if __name__ == "__main__":
    monitor()
    strict()
    streaming()
    asyncio.run(in_async_code())
