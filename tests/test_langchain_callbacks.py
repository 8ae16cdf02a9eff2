"""NoRefusalCallbackHandler / AsyncNoRefusalCallbackHandler on real langchain-core fake models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    FakeListChatModelError,
    GenericFakeChatModel,
    ParrotFakeChatModel,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from norefusal import NoRefusalScanner, RefusalDetected, Signal
from norefusal.integrations.langchain import (
    AsyncNoRefusalCallbackHandler,
    LangChainRefusalDetected,
    NoRefusalCallbackHandler,
    RunVerdict,
)
from norefusal.policies import DecisionEvent, Guard, Policy

REFUSAL = "I'm sorry, but I can't help with that."
ANSWER = "Sure, here is the answer."


@pytest.fixture(scope="module")
def scanner() -> NoRefusalScanner:
    return NoRefusalScanner(model="keyword")


def handler(policy: str | Policy, scanner: NoRefusalScanner, **kw: Any) -> NoRefusalCallbackHandler:
    return NoRefusalCallbackHandler(guard=Guard(policy, scanner=scanner), **kw)


def logging_policy(action: str = "flag") -> Policy:
    return Policy.from_dict({"name": "t", "action": action, "log_text": True})


class ChunkModel(BaseChatModel):
    """Streams exactly the given chunks and counts how many the caller pulled."""

    chunks: list[str]
    pulled: int = 0

    @property
    def _llm_type(self) -> str:
        return "chunk-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage("".join(self.chunks)))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self.chunks:
            self.pulled += 1
            yield ChatGenerationChunk(message=AIMessageChunk(content=chunk))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self.chunks:
            self.pulled += 1
            yield ChatGenerationChunk(message=AIMessageChunk(content=chunk))


def invoke_with(model: Any, handler: Any, prompt: Any = "hello") -> tuple[Any, uuid.UUID]:
    run_id = uuid.uuid4()
    return model.invoke(prompt, config={"callbacks": [handler], "run_id": run_id}), run_id


# -- sync handler: verdicts -----------------------------------------------------------------


def test_compliance_passes_and_leaves_no_run_state(scanner: NoRefusalScanner) -> None:
    h = handler("strict", scanner)
    out, run_id = invoke_with(FakeListChatModel(responses=[ANSWER]), h)
    assert out.content == ANSWER
    verdict = h.results[run_id]
    assert isinstance(verdict, RunVerdict)
    assert (verdict.action, verdict.refused, verdict.prompt_known) == ("pass", False, True)
    assert verdict.result.signal is Signal.CLASSIFIER
    assert h.in_flight == 0


def test_refusal_under_monitor_is_flagged_not_raised(scanner: NoRefusalScanner) -> None:
    h = handler("monitor", scanner)
    assert h.raise_error is False
    out, run_id = invoke_with(FakeListChatModel(responses=[REFUSAL]), h)
    assert out.content == REFUSAL
    assert (h.results[run_id].action, h.results[run_id].refused) == ("flag", True)


def test_refusal_under_strict_raises_with_context(scanner: NoRefusalScanner) -> None:
    h = handler("strict", scanner)
    assert h.raise_error is True
    run_id = uuid.uuid4()
    with pytest.raises(RefusalDetected) as info:
        FakeListChatModel(responses=[REFUSAL]).invoke(
            "how do I do it?", config={"callbacks": [h], "run_id": run_id}
        )
    err = info.value
    assert isinstance(err, LangChainRefusalDetected)
    assert (err.prompt, err.output, err.policy) == ("how do I do it?", REFUSAL, "strict")
    assert REFUSAL not in str(err)
    assert "how do I" not in str(err)
    assert h.results[run_id].action == "raise"
    assert h.in_flight == 0


def test_replace_policy_records_the_replacement(scanner: NoRefusalScanner) -> None:
    h = handler("fallback-message", scanner)
    out, run_id = invoke_with(FakeListChatModel(responses=[REFUSAL]), h)
    assert out.content == REFUSAL  # a callback observes; it cannot change the output
    verdict = h.results[run_id]
    assert verdict.action == "replace"
    assert verdict.replacement == Guard("fallback-message").policy.replacement


def test_retry_policy_in_a_callback_applies_its_final_action(scanner: NoRefusalScanner) -> None:
    h = handler("retry-then-raise", scanner)
    assert h.raise_error is True
    with pytest.raises(RefusalDetected):
        invoke_with(FakeListChatModel(responses=[REFUSAL]), h)


def test_on_verdict_and_on_decision_hooks(scanner: NoRefusalScanner) -> None:
    seen: list[RunVerdict] = []
    events: list[DecisionEvent] = []
    h = NoRefusalCallbackHandler(
        "monitor", scanner=scanner, on_verdict=seen.append, on_decision=events.append
    )
    _, run_id = invoke_with(FakeListChatModel(responses=[REFUSAL]), h)
    assert [v.run_id for v in seen] == [run_id]
    assert [e.action for e in events] == ["check", "flag"]


def test_text_llm_runs_are_scanned_too(scanner: NoRefusalScanner) -> None:
    h = handler("monitor", scanner)
    _, run_id = invoke_with(FakeListLLM(responses=[REFUSAL]), h)
    assert h.results[run_id].refused


def test_every_generation_is_scanned(scanner: NoRefusalScanner) -> None:
    h = handler("monitor", scanner)
    run_id = uuid.uuid4()
    h.on_chat_model_start({}, [[HumanMessage("q")]], run_id=run_id)
    gens = [ChatGeneration(message=AIMessage(ANSWER)), ChatGeneration(message=AIMessage(REFUSAL))]
    h.on_llm_end(LLMResult(generations=[gens]), run_id=run_id)
    verdict = h.results[run_id]
    assert [r.is_refusal for r in verdict.results] == [False, True]
    assert verdict.refused
    assert verdict.result.is_refusal


def test_results_are_bounded(scanner: NoRefusalScanner) -> None:
    h = handler("monitor", scanner, max_results=2)
    model = FakeListChatModel(responses=[ANSWER])
    ids = [invoke_with(model, h)[1] for _ in range(5)]
    assert list(h.results) == ids[-2:]
    assert h.in_flight == 0


def test_max_results_zero_keeps_nothing_but_still_reports(scanner: NoRefusalScanner) -> None:
    seen: list[RunVerdict] = []
    h = handler("monitor", scanner, max_results=0, on_verdict=seen.append)
    invoke_with(FakeListChatModel(responses=[REFUSAL]), h)
    assert len(h.results) == 0
    assert len(seen) == 1


# -- provider signals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "detail"),
    [
        (
            AIMessage("Here you go", additional_kwargs={"refusal": "No."}),
            "additional_kwargs.refusal",
        ),
        (AIMessage([{"type": "refusal", "refusal": "No."}]), "content.refusal"),
        (AIMessage([{"type": "refusal", "refusal": ""}]), "content.refusal"),
        (
            AIMessage([{"type": "non_standard", "value": {"type": "refusal", "refusal": "No."}}]),
            "content.refusal",
        ),
        (
            AIMessage("", response_metadata={"finish_reason": "content_filter"}),
            "finish_reason=content_filter",
        ),
        (AIMessage("", response_metadata={"stop_reason": "refusal"}), "stop_reason=refusal"),
    ],
)
def test_provider_refusal_signals_decide(
    scanner: NoRefusalScanner, message: AIMessage, detail: str
) -> None:
    h = handler("monitor", scanner)
    _, run_id = invoke_with(GenericFakeChatModel(messages=iter([message])), h)
    result = h.results[run_id].result
    assert result.is_refusal
    assert result.signal is Signal.PROVIDER
    assert result.detail == detail


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "refused", "signal"),
    [
        (
            AIMessage(
                [
                    {"type": "text", "text": "I'm sorry, "},
                    {"type": "text", "text": "but I can't help with that."},
                ]
            ),
            True,
            Signal.CLASSIFIER,
        ),
        (
            AIMessage(
                [{"type": "text", "text": ANSWER}, {"type": "image", "url": "https://x/y.png"}]
            ),
            False,
            Signal.CLASSIFIER,
        ),
        (
            AIMessage([{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]),
            False,
            Signal.EMPTY,
        ),
        (
            AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "c1"}]),
            False,
            Signal.EMPTY,
        ),
        (AIMessage(""), False, Signal.EMPTY),
        (AIMessage([]), False, Signal.EMPTY),
    ],
    ids=["text-blocks", "text-and-image", "image-only", "tool-calls-only", "empty", "empty-list"],
)
def test_bad_generations_get_a_documented_verdict(
    scanner: NoRefusalScanner, message: AIMessage, refused: bool, signal: Signal
) -> None:
    h = handler("strict", scanner)
    model = GenericFakeChatModel(messages=iter([message]))
    run_id = uuid.uuid4()
    try:
        model.invoke("q", config={"callbacks": [h], "run_id": run_id})
    except RefusalDetected:
        assert refused
    verdict = h.results[run_id]
    assert verdict.refused is refused
    assert verdict.result.signal is signal
    assert h.in_flight == 0


def test_a_prompt_of_ten_thousand_messages(scanner: NoRefusalScanner) -> None:
    events: list[DecisionEvent] = []
    h = NoRefusalCallbackHandler(
        guard=Guard(logging_policy(), scanner=scanner, on_decision=events.append)
    )
    history: list[BaseMessage] = []
    for i in range(5000):
        history += [HumanMessage(f"question {i}"), AIMessage(f"answer {i}")]
    history.append(HumanMessage("the last question"))
    _, run_id = invoke_with(FakeListChatModel(responses=[REFUSAL]), h, history[:10_000])
    assert h.results[run_id].refused
    assert events[0].prompt == "question 4999"  # the latest user turn is the prompt
    assert h.in_flight == 0


def test_on_llm_end_for_an_unknown_run_is_scanned_without_a_prompt(
    scanner: NoRefusalScanner,
) -> None:
    h = handler("monitor", scanner)
    run_id = uuid.uuid4()
    h.on_llm_end(
        LLMResult(generations=[[ChatGeneration(message=AIMessage(REFUSAL))]]), run_id=run_id
    )
    verdict = h.results[run_id]
    assert verdict.refused
    assert verdict.prompt_known is False
    assert h.in_flight == 0
    h.on_llm_end(LLMResult(generations=[]), run_id=uuid.uuid4())  # nothing to scan: no verdict
    assert len(h.results) == 1
    h.on_llm_error(RuntimeError("x"), run_id=uuid.uuid4())  # unknown error: nothing to drop
    h.on_llm_new_token("x", run_id=uuid.uuid4())  # unknown token: no state created
    assert h.in_flight == 0


def test_model_error_drops_the_run(scanner: NoRefusalScanner) -> None:
    h = handler("strict", scanner)
    model = FakeListChatModel(responses=[ANSWER], error_on_chunk_number=3)
    with pytest.raises(FakeListChatModelError):
        list(model.stream("q", config={"callbacks": [h]}))
    assert h.in_flight == 0
    assert len(h.results) == 0


# -- concurrency ------------------------------------------------------------------------


def test_concurrent_runs_each_get_their_own_verdict(scanner: NoRefusalScanner) -> None:
    events: list[DecisionEvent] = []
    h = NoRefusalCallbackHandler(
        guard=Guard(logging_policy(), scanner=scanner, on_decision=events.append)
    )
    prompts = [REFUSAL if i % 3 == 0 else f"tell me about {i}" for i in range(24)]
    ids = [uuid.uuid4() for _ in prompts]
    # The parrot answers each prompt with itself: a run is refused exactly when its prompt is.
    ParrotFakeChatModel().batch(
        prompts,
        config=[{"callbacks": [h], "run_id": run_id, "max_concurrency": 8} for run_id in ids],
    )
    for prompt, run_id in zip(prompts, ids, strict=True):
        assert h.results[run_id].refused is (prompt == REFUSAL)
    checks = [e for e in events if e.action == "check"]
    assert len(checks) == len(prompts)
    assert all(e.prompt == e.output for e in checks)  # each output met its own prompt
    assert h.in_flight == 0


def test_concurrent_runs_with_a_raising_policy(scanner: NoRefusalScanner) -> None:
    h = handler("strict", scanner)
    prompts = [REFUSAL if i % 2 else f"question {i}" for i in range(10)]
    out = ParrotFakeChatModel().batch(
        prompts, config={"callbacks": [h], "max_concurrency": 5}, return_exceptions=True
    )
    for prompt, got in zip(prompts, out, strict=True):
        if prompt == REFUSAL:
            assert isinstance(got, LangChainRefusalDetected)
            assert got.prompt == prompt
        else:
            assert isinstance(got, BaseMessage)
            assert got.content == prompt
    assert h.in_flight == 0


# -- streaming --------------------------------------------------------------------------


def test_stream_aborts_at_the_first_token(scanner: NoRefusalScanner) -> None:
    h = handler("strict", scanner)
    model = ChunkModel(chunks=[REFUSAL + " Let me explain", " why", " at", " length."])
    got: list[Any] = []
    with pytest.raises(RefusalDetected):
        got.extend(model.stream("q", config={"callbacks": [h]}))
    assert model.pulled == 1
    assert got == []
    (verdict,) = h.results.values()
    assert verdict.streamed
    assert verdict.action == "raise"
    assert h.in_flight == 0


def test_stream_flag_passes_everything_and_decides_once(scanner: NoRefusalScanner) -> None:
    events: list[DecisionEvent] = []
    h = NoRefusalCallbackHandler("monitor", scanner=scanner, on_decision=events.append)
    model = ChunkModel(chunks=[REFUSAL + " Let me explain", " why."])
    got = list(model.stream("q", config={"callbacks": [h]}))
    assert "".join(str(c.content) for c in got) == REFUSAL + " Let me explain why."
    assert model.pulled == 2
    (verdict,) = h.results.values()
    assert verdict.streamed
    assert verdict.action == "flag"
    assert [e.stage for e in events if e.action == "flag"] == ["stream"]


def test_stream_compliance_is_checked_at_the_end(scanner: NoRefusalScanner) -> None:
    h = handler("strict", scanner)
    got = list(FakeListChatModel(responses=[ANSWER]).stream("q", config={"callbacks": [h]}))
    assert "".join(str(c.content) for c in got) == ANSWER
    (verdict,) = h.results.values()
    assert not verdict.refused
    assert not verdict.streamed


def test_short_streamed_refusal_is_caught_at_the_end(scanner: NoRefusalScanner) -> None:
    h = handler("strict", scanner)  # too short to reach a checkpoint: on_llm_end decides
    with pytest.raises(RefusalDetected):
        list(FakeListChatModel(responses=["I can't."]).stream("q", config={"callbacks": [h]}))
    assert h.in_flight == 0


def test_streamed_provider_refusal_chunk_stops_the_stream(scanner: NoRefusalScanner) -> None:
    h = handler("strict", scanner)
    model = GenericFakeChatModel(
        messages=iter([AIMessage("Well", additional_kwargs={"refusal": "I can't."})])
    )
    with pytest.raises(RefusalDetected):
        list(model.stream("q", config={"callbacks": [h]}))
    (verdict,) = h.results.values()
    assert verdict.streamed
    assert verdict.result.signal is Signal.PROVIDER


# -- async handler ----------------------------------------------------------------------


async def test_async_handler_raises_under_ainvoke(scanner: NoRefusalScanner) -> None:
    h = AsyncNoRefusalCallbackHandler(guard=Guard("strict", scanner=scanner))
    run_id = uuid.uuid4()
    with pytest.raises(LangChainRefusalDetected):
        await FakeListChatModel(responses=[REFUSAL]).ainvoke(
            "q", config={"callbacks": [h], "run_id": run_id}
        )
    assert h.results[run_id].action == "raise"
    assert h.in_flight == 0


async def test_sync_handler_raises_from_async_code_too(scanner: NoRefusalScanner) -> None:
    h = handler("strict", scanner)  # LangChain runs it in a worker thread and re-raises
    with pytest.raises(LangChainRefusalDetected):
        await FakeListChatModel(responses=[REFUSAL]).ainvoke("q", config={"callbacks": [h]})
    out = await FakeListChatModel(responses=[ANSWER]).ainvoke("q", config={"callbacks": [h]})
    assert out.content == ANSWER
    assert [v.action for v in h.results.values()] == ["raise", "pass"]
    assert h.in_flight == 0


def test_async_handler_exception_is_swallowed_when_invoked_synchronously(
    scanner: NoRefusalScanner,
) -> None:
    # The documented LangChain caveat: the verdict is recorded, but the raise never arrives.
    h = AsyncNoRefusalCallbackHandler(guard=Guard("strict", scanner=scanner))
    out, run_id = invoke_with(FakeListChatModel(responses=[REFUSAL]), h)
    assert out.content == REFUSAL
    assert h.results[run_id].action == "raise"


async def test_async_concurrent_runs_with_async_hooks(scanner: NoRefusalScanner) -> None:
    seen: dict[uuid.UUID, bool] = {}

    async def on_verdict(verdict: RunVerdict) -> None:
        await asyncio.sleep(0)
        seen[verdict.run_id] = verdict.refused

    h = AsyncNoRefusalCallbackHandler("monitor", scanner=scanner, on_verdict=on_verdict)
    prompts = [REFUSAL if i % 2 else f"topic {i}" for i in range(12)]
    ids = [uuid.uuid4() for _ in prompts]
    model = ParrotFakeChatModel()
    await asyncio.gather(
        *(
            model.ainvoke(p, config={"callbacks": [h], "run_id": r})
            for p, r in zip(prompts, ids, strict=True)
        )
    )
    assert seen == {r: p == REFUSAL for p, r in zip(prompts, ids, strict=True)}
    assert h.in_flight == 0


async def test_async_stream_aborts_at_the_first_token(scanner: NoRefusalScanner) -> None:
    h = AsyncNoRefusalCallbackHandler(guard=Guard("strict", scanner=scanner))
    model = ChunkModel(chunks=[REFUSAL + " And more", " text", " here."])
    with pytest.raises(RefusalDetected):
        async for _ in model.astream("q", config={"callbacks": [h]}):
            pass
    assert model.pulled == 1
    assert h.in_flight == 0


# -- options ----------------------------------------------------------------------------


def test_guard_and_policy_together_is_an_error(scanner: NoRefusalScanner) -> None:
    from norefusal import ConfigurationError

    with pytest.raises(ConfigurationError, match="either guard"):
        NoRefusalCallbackHandler("strict", guard=Guard("strict", scanner=scanner))
    with pytest.raises(ConfigurationError, match="max_results"):
        NoRefusalCallbackHandler(scanner=scanner, max_results=-1)


def test_builtin_name_and_default_policy(scanner: NoRefusalScanner) -> None:
    assert NoRefusalCallbackHandler(scanner=scanner).guard.policy.name == "monitor"
    assert NoRefusalCallbackHandler("strict", scanner=scanner).guard.policy.name == "strict"
