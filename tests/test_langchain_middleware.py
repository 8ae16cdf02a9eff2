"""NoRefusalMiddleware in a real langchain 1.x agent (create_agent) over fake chat models."""

from __future__ import annotations

from typing import Any

import pytest
from norefusal import ConfigurationError, NoRefusalScanner, RefusalDetected, Signal
from norefusal.integrations.langchain import LangChainRefusalDetected, NoRefusalMiddleware
from norefusal.policies import DecisionEvent, Guard, Outcome, Policy
from pydantic import Field

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

REFUSAL = "I'm sorry, but I can't help with that."
ANSWER = "Sure: the answer is 42."


@pytest.fixture(scope="module")
def scanner() -> NoRefusalScanner:
    return NoRefusalScanner(model="keyword")


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return "42"


class ToolModel(FakeMessagesListChatModel):
    """FakeMessagesListChatModel that records what it was asked and accepts tools."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolModel:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def model(*responses: BaseMessage) -> ToolModel:
    return ToolModel(responses=list(responses))


def middleware(policy: str | Policy, scanner: NoRefusalScanner, **kw: Any) -> NoRefusalMiddleware:
    events = kw.pop("events", None)
    on_decision = events.append if events is not None else None
    return NoRefusalMiddleware(guard=Guard(policy, scanner=scanner, on_decision=on_decision), **kw)


def run(
    agent_model: ToolModel, mw: NoRefusalMiddleware, question: str = "what is it?"
) -> list[BaseMessage]:
    agent = create_agent(model=agent_model, tools=[lookup], middleware=[mw])
    out: list[BaseMessage] = agent.invoke({"messages": [HumanMessage(question)]})["messages"]
    return out


def test_compliance_passes(scanner: NoRefusalScanner) -> None:
    outcomes: list[Outcome[Any]] = []
    out = run(model(AIMessage(ANSWER)), middleware("strict", scanner, on_outcome=outcomes.append))
    assert out[-1].content == ANSWER
    assert [o.action for o in outcomes] == ["pass"]


def test_flag_passes_the_refusal_and_records_it(scanner: NoRefusalScanner) -> None:
    events: list[DecisionEvent] = []
    out = run(model(AIMessage(REFUSAL)), middleware("monitor", scanner, events=events))
    assert out[-1].content == REFUSAL
    assert events[-1].action == "flag"


def test_raise_leaves_the_agent_with_the_message(scanner: NoRefusalScanner) -> None:
    with pytest.raises(RefusalDetected) as info:
        run(model(AIMessage(REFUSAL, id="r1")), middleware("strict", scanner), "how?")
    err = info.value
    assert isinstance(err, LangChainRefusalDetected)
    assert err.prompt == "how?"
    assert err.raw_message is not None
    assert err.raw_message.id == "r1"


def test_replace_swaps_the_refused_message_by_id(scanner: NoRefusalScanner) -> None:
    refused = AIMessage(REFUSAL, id="m2")
    out = run(
        model(
            AIMessage("", tool_calls=[{"name": "lookup", "args": {"query": "x"}, "id": "c1"}]),
            refused,
        ),
        middleware("fallback-message", scanner),
    )
    # The tool-call turn (no text) passed; the refusal was replaced under its own id.
    assert isinstance(out[1], AIMessage)
    assert out[1].tool_calls
    assert isinstance(out[2], ToolMessage)
    assert out[-1].id == "m2"
    assert out[-1].content == Guard("fallback-message").policy.replacement
    assert sum(m.id == "m2" for m in out) == 1


def test_replace_drops_tool_calls_of_a_refused_message(scanner: NoRefusalScanner) -> None:
    refused = AIMessage(
        REFUSAL, id="m1", tool_calls=[{"name": "lookup", "args": {"query": "x"}, "id": "c9"}]
    )
    out = run(model(refused), middleware("fallback-message", scanner))
    assert isinstance(out[-1], AIMessage)
    assert out[-1].tool_calls == []
    assert not any(isinstance(m, ToolMessage) for m in out)  # the refused tool run never ran


def test_retry_adds_the_instruction_for_that_call_only(scanner: NoRefusalScanner) -> None:
    m = model(AIMessage(REFUSAL), AIMessage(ANSWER))
    outcomes: list[Outcome[Any]] = []
    out = run(m, middleware("retry-then-raise", scanner, on_outcome=outcomes.append))
    assert out[-1].content == ANSWER
    assert (outcomes[0].action, outcomes[0].attempts) == ("retry", 2)
    instruction = Guard("retry-then-raise").policy.retry_instruction
    assert m.seen[1][-1].content == instruction
    assert all(msg.content != instruction for msg in out)  # not written into the agent state


def test_retry_then_raise(scanner: NoRefusalScanner) -> None:
    m = model(AIMessage(REFUSAL), AIMessage(REFUSAL, id="last"), AIMessage(REFUSAL, id="final"))
    with pytest.raises(LangChainRefusalDetected) as info:
        run(m, middleware("retry-then-raise", scanner))
    assert len(m.seen) == 3
    assert info.value.raw_message is not None
    assert info.value.raw_message.id == "final"


def test_fallback_switches_the_model(scanner: NoRefusalScanner) -> None:
    policy = Policy.from_dict({"name": "fb", "action": "fallback", "fallback_model": "backup"})
    backup = model(AIMessage("From the backup: 42."))
    out = run(model(AIMessage(REFUSAL)), middleware(policy, scanner, fallback={"backup": backup}))
    assert out[-1].content == "From the backup: 42."
    assert len(backup.seen) == 1


def test_fallback_without_a_model_says_what_to_pass(scanner: NoRefusalScanner) -> None:
    policy = Policy.from_dict(
        {"name": "fb", "action": "fallback", "fallback_model": "nosuchprovider:nomodel"}
    )
    with pytest.raises(ConfigurationError, match="fallback="):
        run(model(AIMessage(REFUSAL)), middleware(policy, scanner))
    with pytest.raises(ConfigurationError, match="no fallback model"):
        run(model(AIMessage(REFUSAL)), middleware(policy, scanner, fallback={"other": model()}))


def test_provider_refusal_signal(scanner: NoRefusalScanner) -> None:
    outcomes: list[Outcome[Any]] = []
    msg = AIMessage("Here", additional_kwargs={"refusal": "I can't."})
    run(model(msg), middleware("monitor", scanner, on_outcome=outcomes.append))
    assert outcomes[0].result.signal is Signal.PROVIDER


async def test_async_agent(scanner: NoRefusalScanner) -> None:
    m = model(AIMessage(REFUSAL), AIMessage(ANSWER))
    agent = create_agent(
        model=m, tools=[lookup], middleware=[middleware("retry-then-raise", scanner)]
    )
    out = await agent.ainvoke({"messages": [HumanMessage("q")]})
    assert out["messages"][-1].content == ANSWER
    strict = create_agent(
        model=model(AIMessage(REFUSAL)), tools=[lookup], middleware=[middleware("strict", scanner)]
    )
    with pytest.raises(LangChainRefusalDetected):
        await strict.ainvoke({"messages": [HumanMessage("q")]})


async def test_async_replace_and_fallback(scanner: NoRefusalScanner) -> None:
    agent = create_agent(
        model=model(AIMessage(REFUSAL, id="z")),
        tools=[lookup],
        middleware=[middleware("fallback-message", scanner)],
    )
    out = (await agent.ainvoke({"messages": [HumanMessage("q")]}))["messages"]
    assert out[-1].id == "z"
    assert out[-1].content == Guard("fallback-message").policy.replacement
    policy = Policy.from_dict({"name": "fb", "action": "fallback", "fallback_model": "b"})
    agent = create_agent(
        model=model(AIMessage(REFUSAL)),
        tools=[lookup],
        middleware=[middleware(policy, scanner, fallback=model(AIMessage("B.")))],
    )
    out = (await agent.ainvoke({"messages": [HumanMessage("q")]}))["messages"]
    assert out[-1].content == "B."


def test_long_conversation_prompt(scanner: NoRefusalScanner) -> None:
    events: list[DecisionEvent] = []
    policy = Policy.from_dict({"name": "t", "log_text": True})
    history: list[BaseMessage] = []
    for i in range(5000):
        history += [HumanMessage(f"q{i}"), AIMessage(f"a{i}")]
    agent = create_agent(
        model=model(AIMessage(REFUSAL)),
        tools=[lookup],
        middleware=[middleware(policy, scanner, events=events)],
    )
    agent.invoke({"messages": history})
    assert events[-1].prompt == "q4999"
