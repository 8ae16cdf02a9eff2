"""Guard a LangChain agent with middleware: retry a refusal, then fall back to another model.

Runs offline: fake chat models stand in for real ones and the fast ``keyword`` scanner preset
for the default model. In your code, pass real models (or let the policy's ``fallback_model``
name one for ``init_chat_model``) and drop ``scanner=``.

    python examples/langchain_agent.py
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from norefusal import NoRefusalScanner
from norefusal.integrations.langchain import NoRefusalMiddleware
from norefusal.policies import Guard, Policy

REFUSAL = "I'm sorry, but I can't help with that."
scanner = NoRefusalScanner(model="keyword")


@tool
def opening_hours(shop: str) -> str:
    """Opening hours of a shop."""
    return "9:00 to 17:00"


class FakeToolModel(FakeMessagesListChatModel):
    """A scripted chat model that accepts tools, as create_agent needs."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> FakeToolModel:
        return self


def ask(agent: Any, question: str) -> str:
    state = agent.invoke({"messages": [HumanMessage(question)]})
    return str(state["messages"][-1].content)


def main() -> None:
    policy = Policy.from_dict(
        {
            "name": "retry-then-fallback",
            "action": "retry",
            "retries": 1,
            "retry_instruction": "If the request is safe, answer it directly.",
            "fallback_model": "backup",
            "final_action": "raise",
        }
    )
    primary = FakeToolModel(
        responses=[
            AIMessage(
                "", tool_calls=[{"name": "opening_hours", "args": {"shop": "bakery"}, "id": "c1"}]
            ),
            AIMessage(REFUSAL),  # refused after the tool call ...
            AIMessage(REFUSAL),  # ... and again on the retry
        ]
    )
    backup = FakeToolModel(responses=[AIMessage("The bakery opens 9:00 to 17:00.")])
    events: list[str] = []
    middleware = NoRefusalMiddleware(
        guard=Guard(policy, scanner=scanner, on_decision=lambda e: events.append(e.action)),
        fallback={"backup": backup},
    )
    agent = create_agent(model=primary, tools=[opening_hours], middleware=[middleware])
    answer = ask(agent, "When does the bakery open?")
    print(f"answer: {answer!r}")
    print(f"decisions: {events}")
    assert answer == "The bakery opens 9:00 to 17:00."

    replacing = create_agent(
        model=FakeToolModel(responses=[AIMessage(REFUSAL)]),
        tools=[opening_hours],
        middleware=[NoRefusalMiddleware(guard=Guard("fallback-message", scanner=scanner))],
    )
    print(f"replaced: {ask(replacing, 'When does the bakery open?')!r}")


if __name__ == "__main__":
    main()
