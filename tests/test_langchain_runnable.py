"""NoRefusalGuard in LCEL chains, on real langchain-core fake models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
    ParrotFakeChatModel,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough
from norefusal import ConfigurationError, NoRefusalScanner, RefusalDetected, Signal
from norefusal.integrations.langchain import LangChainRefusalDetected, NoRefusalGuard
from norefusal.policies import DecisionEvent, Guard, Outcome, Policy

REFUSAL = "I'm sorry, but I can't help with that."
ANSWER = "Sure, here is the answer."


@pytest.fixture(scope="module")
def scanner() -> NoRefusalScanner:
    return NoRefusalScanner(model="keyword")


def guard(policy: str | Policy, scanner: NoRefusalScanner, **kw: Any) -> NoRefusalGuard:
    events = kw.pop("events", None)
    on_decision = events.append if events is not None else None
    return NoRefusalGuard(guard=Guard(policy, scanner=scanner, on_decision=on_decision), **kw)


class ChunkModel(BaseChatModel):
    """Streams exactly the given chunks and counts how many were pulled."""

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


async def collect(stream: AsyncIterator[Any], into: list[Any]) -> None:
    async for chunk in stream:
        into.append(chunk)


def text_of(chunks: list[Any]) -> str:
    return "".join(c if isinstance(c, str) else str(c.content) for c in chunks)


# -- invoke ---------------------------------------------------------------------------------


def test_compliance_passes_the_message_through(scanner: NoRefusalScanner) -> None:
    out = (FakeListChatModel(responses=[ANSWER]) | guard("strict", scanner)).invoke("q")
    assert isinstance(out, AIMessage)
    assert out.content == ANSWER


def test_refusal_flagged_under_monitor(scanner: NoRefusalScanner) -> None:
    outcomes: list[Outcome[Any]] = []
    g = guard("monitor", scanner, on_outcome=outcomes.append)
    out = (FakeListChatModel(responses=[REFUSAL]) | g).invoke("q")
    assert out.content == REFUSAL
    assert (outcomes[0].action, outcomes[0].refused) == ("flag", True)


def test_refusal_raises_under_strict_with_the_message(scanner: NoRefusalScanner) -> None:
    with pytest.raises(RefusalDetected) as info:
        (FakeListChatModel(responses=[REFUSAL]) | guard("strict", scanner)).invoke("q")
    err = info.value
    assert isinstance(err, LangChainRefusalDetected)
    assert isinstance(err.raw_message, AIMessage)
    assert err.raw_message.content == REFUSAL
    assert err.output == REFUSAL
    assert err.policy == "strict"


def test_replace_keeps_the_message_id(scanner: NoRefusalScanner) -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(REFUSAL, id="m-1")]))
    out = (model | guard("fallback-message", scanner)).invoke("q")
    assert isinstance(out, AIMessage)
    assert out.id == "m-1"
    assert out.content == Guard("fallback-message").policy.replacement


def test_strings_pass_through_after_a_parser(scanner: NoRefusalScanner) -> None:
    chain = (
        FakeListChatModel(responses=[REFUSAL])
        | StrOutputParser()
        | guard("fallback-message", scanner)
    )
    assert chain.invoke("q") == Guard("fallback-message").policy.replacement
    assert (
        FakeListChatModel(responses=[ANSWER]) | StrOutputParser() | guard("strict", scanner)
    ).invoke("q") == ANSWER


def test_provider_refusal_decides_without_the_classifier(scanner: NoRefusalScanner) -> None:
    outcomes: list[Outcome[Any]] = []
    g = guard("monitor", scanner, on_outcome=outcomes.append)
    msg = AIMessage("Here is", additional_kwargs={"refusal": "I can't do that."})
    (GenericFakeChatModel(messages=iter([msg])) | g).invoke("q")
    assert outcomes[0].result.signal is Signal.PROVIDER


def test_runnable_parallel_carries_the_prompt(scanner: NoRefusalScanner) -> None:
    events: list[DecisionEvent] = []
    policy = Policy.from_dict({"name": "t", "log_text": True})
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])
    chain = (
        prompt
        | RunnableParallel(
            prompt=RunnablePassthrough(), output=FakeListChatModel(responses=[REFUSAL])
        )
        | guard(policy, scanner, events=events)
    )
    out = chain.invoke({"question": "how do I bake bread?"})
    assert out.content == REFUSAL  # the guard returns the output, not the mapping
    assert events[-1].prompt == "how do I bake bread?"


def test_retry_asks_the_model_again_with_the_instruction(scanner: NoRefusalScanner) -> None:
    # The parrot answers with the last message: first the refusal-shaped prompt, then the
    # retry instruction the guard appended as a last user turn.
    parrot = ParrotFakeChatModel()
    policy = Guard("retry-then-raise").policy
    outcomes: list[Outcome[Any]] = []
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    chain = (
        prompt
        | RunnableParallel(prompt=RunnablePassthrough(), output=parrot)
        | guard(policy, scanner, model=parrot, on_outcome=outcomes.append)
    )
    out = chain.invoke({"question": REFUSAL})
    assert out.content == policy.retry_instruction
    assert (outcomes[0].action, outcomes[0].attempts) == ("retry", 2)
    assert outcomes[0].original is not None
    assert outcomes[0].original.content == REFUSAL


def test_retry_then_raise_when_every_answer_refuses(scanner: NoRefusalScanner) -> None:
    model = FakeListChatModel(responses=[REFUSAL])
    chain = RunnableParallel(prompt=RunnablePassthrough(), output=model) | guard(
        "retry-then-raise", scanner, model=model
    )
    with pytest.raises(LangChainRefusalDetected):
        chain.invoke("q")


def test_fallback_model_by_name(scanner: NoRefusalScanner) -> None:
    policy = Policy.from_dict({"name": "fb", "action": "fallback", "fallback_model": "backup"})
    backup = FakeListChatModel(responses=["From the backup: 42."])
    chain = RunnableParallel(
        prompt=RunnablePassthrough(), output=FakeListChatModel(responses=[REFUSAL])
    ) | guard(policy, scanner, fallback={"backup": backup})
    assert chain.invoke("q").content == "From the backup: 42."


def test_missing_model_or_prompt_is_a_configuration_error(scanner: NoRefusalScanner) -> None:
    with pytest.raises(ConfigurationError, match="model="):
        guard("retry-then-raise", scanner)
    policy = Policy.from_dict({"name": "fb", "action": "fallback", "fallback_model": "backup"})
    with pytest.raises(ConfigurationError, match="fallback="):
        guard(policy, scanner)
    model = FakeListChatModel(responses=[REFUSAL])
    with pytest.raises(ConfigurationError, match="needs the prompt"):
        (model | guard("retry-then-raise", scanner, model=model)).invoke("q")


def test_wrong_input_types_say_what_to_do(scanner: NoRefusalScanner) -> None:
    g = guard("monitor", scanner)
    with pytest.raises(TypeError, match="right after the model"):
        g.invoke(42)
    with pytest.raises(TypeError, match="output_key"):
        g.invoke({"answer": "x"})


async def test_ainvoke_and_async_retry(scanner: NoRefusalScanner) -> None:
    parrot = ParrotFakeChatModel()
    chain = RunnableParallel(prompt=RunnablePassthrough(), output=parrot) | guard(
        "retry-then-raise", scanner, model=parrot
    )
    # A string prompt gets the instruction appended; the parrot then still starts refusing.
    with pytest.raises(LangChainRefusalDetected) as info:
        await chain.ainvoke(REFUSAL)
    assert info.value.output.startswith(REFUSAL + "\n\n")
    assert info.value.output.endswith(str(Guard("retry-then-raise").policy.retry_instruction))
    raw = info.value.raw_message  # the last answer, the one that decided
    assert raw is not None
    assert raw.content == info.value.output
    with pytest.raises(LangChainRefusalDetected):
        await (FakeListChatModel(responses=[REFUSAL]) | guard("strict", scanner)).ainvoke("q")


# -- batch and fallbacks -----------------------------------------------------------------


def test_batch_with_return_exceptions(scanner: NoRefusalScanner) -> None:
    chain = ParrotFakeChatModel() | guard("strict", scanner)
    prompts = [REFUSAL if i % 3 == 0 else f"q{i}" for i in range(9)]
    out = chain.batch(prompts, config={"max_concurrency": 4}, return_exceptions=True)
    for prompt, got in zip(prompts, out, strict=True):
        if prompt == REFUSAL:
            assert isinstance(got, LangChainRefusalDetected)
            assert got.output == REFUSAL
        else:
            assert got.content == prompt


async def test_abatch_with_return_exceptions(scanner: NoRefusalScanner) -> None:
    chain = ParrotFakeChatModel() | guard("strict", scanner)
    prompts = [REFUSAL, "a", REFUSAL, "b"]
    out = await chain.abatch(prompts, return_exceptions=True)
    assert [isinstance(o, RefusalDetected) for o in out] == [True, False, True, False]


def test_with_fallbacks_on_refusal(scanner: NoRefusalScanner) -> None:
    primary = FakeListChatModel(responses=[REFUSAL]) | guard("strict", scanner)
    backup = FakeListChatModel(responses=["Backup answer."])
    chain = primary.with_fallbacks([backup], exceptions_to_handle=(RefusalDetected,))
    assert chain.invoke("q").content == "Backup answer."
    ok = (FakeListChatModel(responses=[ANSWER]) | guard("strict", scanner)).with_fallbacks(
        [backup], exceptions_to_handle=(RefusalDetected,)
    )
    assert ok.invoke("q").content == ANSWER


async def test_with_fallbacks_async(scanner: NoRefusalScanner) -> None:
    primary = FakeListChatModel(responses=[REFUSAL]) | guard("strict", scanner)
    chain = primary.with_fallbacks(
        [FakeListChatModel(responses=["Backup."])], exceptions_to_handle=(RefusalDetected,)
    )
    assert (await chain.ainvoke("q")).content == "Backup."


# -- streaming ---------------------------------------------------------------------------


def test_stream_passes_chunks_as_they_come(scanner: NoRefusalScanner) -> None:
    model = ChunkModel(chunks=["Sure", ", here", " is", " the", " answer."])
    stream = (model | guard("strict", scanner)).stream("q")
    first = next(stream)
    assert first.content == "Sure"
    assert model.pulled == 1
    rest = list(stream)
    assert text_of([first, *rest]) == "Sure, here is the answer."
    assert model.pulled == 5


def test_stream_stops_at_the_first_token_on_a_refusal(scanner: NoRefusalScanner) -> None:
    model = ChunkModel(chunks=[REFUSAL + " Let me explain", " why", " at", " length."])
    got: list[Any] = []
    with pytest.raises(LangChainRefusalDetected):
        got.extend((model | guard("strict", scanner)).stream("q"))
    assert got == []
    assert model.pulled == 1


def test_stream_replace_ends_with_the_replacement(scanner: NoRefusalScanner) -> None:
    model = ChunkModel(chunks=["Hello.", " " + REFUSAL + " More", " and", " more."])
    got = list((model | guard("fallback-message", scanner)).stream("q"))
    assert got[0].content == "Hello."
    assert got[-1].content == Guard("fallback-message").policy.replacement
    assert model.pulled == 2


def test_stream_flag_passes_everything(scanner: NoRefusalScanner) -> None:
    events: list[DecisionEvent] = []
    model = ChunkModel(chunks=[REFUSAL + " Let me explain", " why."])
    got = list((model | guard("monitor", scanner, events=events)).stream("q"))
    assert text_of(got) == REFUSAL + " Let me explain why."
    assert [e.action for e in events] == ["flag"]


def test_short_streamed_refusal_is_caught_at_the_end(scanner: NoRefusalScanner) -> None:
    got: list[Any] = []
    with pytest.raises(LangChainRefusalDetected):
        got.extend(
            (FakeListChatModel(responses=["I can't."]) | guard("strict", scanner)).stream("q")
        )
    assert text_of(got) == "I can't."  # passed on as it came; the verdict came at the end


def test_stream_of_strings_after_a_parser(scanner: NoRefusalScanner) -> None:
    model = ChunkModel(chunks=[REFUSAL + " Blah", " blah."])
    got = list((model | StrOutputParser() | guard("fallback-message", scanner)).stream("q"))
    assert got == [Guard("fallback-message").policy.replacement]


def test_stream_provider_refusal_chunk(scanner: NoRefusalScanner) -> None:
    msg = AIMessage("Well", additional_kwargs={"refusal": "I can't."})
    with pytest.raises(LangChainRefusalDetected) as info:
        list((GenericFakeChatModel(messages=iter([msg])) | guard("strict", scanner)).stream("q"))
    assert info.value.result.signal is Signal.PROVIDER


def test_stream_through_runnable_parallel(scanner: NoRefusalScanner) -> None:
    events: list[DecisionEvent] = []
    policy = Policy.from_dict({"name": "t", "log_text": True})
    model = ChunkModel(chunks=[REFUSAL + " So", " there."])
    chain = RunnableParallel(prompt=RunnablePassthrough(), output=model) | guard(
        policy, scanner, events=events
    )
    got = list(chain.stream("the question"))
    assert text_of(got) == REFUSAL + " So there."
    assert events[-1].action == "flag"
    assert events[-1].prompt == "the question"


def test_stream_retry_policy_applies_final_action(scanner: NoRefusalScanner) -> None:
    model = ChunkModel(chunks=[REFUSAL + " More text", "."])
    with pytest.raises(LangChainRefusalDetected):
        list((model | guard("retry-then-raise", scanner, model=model)).stream("q"))


async def test_astream_passes_then_stops(scanner: NoRefusalScanner) -> None:
    model = ChunkModel(chunks=["Sure", ", here", " it", " is."])
    got = [c async for c in (model | guard("strict", scanner)).astream("q")]
    assert text_of(got) == "Sure, here it is."
    refusing = ChunkModel(chunks=[REFUSAL + " Let me explain", " why."])
    seen: list[Any] = []
    with pytest.raises(LangChainRefusalDetected):
        await collect((refusing | guard("strict", scanner)).astream("q"), seen)
    assert seen == []
    assert refusing.pulled == 1


async def test_astream_replace_and_end_check(scanner: NoRefusalScanner) -> None:
    model = ChunkModel(chunks=[REFUSAL + " X", " Y."])
    got = [c async for c in (model | guard("fallback-message", scanner)).astream("q")]
    assert got[-1].content == Guard("fallback-message").policy.replacement
    with pytest.raises(LangChainRefusalDetected):
        async for _ in (
            FakeListChatModel(responses=["I can't."]) | guard("strict", scanner)
        ).astream("q"):
            pass


def test_guard_stream_on_its_own_and_wrong_chunks(scanner: NoRefusalScanner) -> None:
    g = guard("monitor", scanner)
    assert text_of(list(g.stream(AIMessage(ANSWER)))) == ANSWER
    with pytest.raises(TypeError, match="NoRefusalGuard takes"):
        list((RunnableLambda(lambda _: 42) | g).stream("q"))
