"""Guard an LCEL chain: ``llm | NoRefusalGuard(policy)``.

Runs offline on langchain-core's fake chat models and the fast ``keyword`` scanner preset. In
your code, use a real model and drop ``scanner=`` to use the default model.

    python examples/langchain_chain.py
"""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from norefusal import NoRefusalScanner, RefusalDetected
from norefusal.integrations.langchain import NoRefusalGuard
from norefusal.policies import Guard

REFUSAL = "I'm sorry, but I can't help with that."
scanner = NoRefusalScanner(model="keyword")
prompt = ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("human", "{question}")])


def replace() -> None:
    print("replace: a refusal becomes the policy's message")
    llm = FakeListChatModel(responses=[REFUSAL])
    chain = (
        prompt
        | llm
        | NoRefusalGuard(guard=Guard("fallback-message", scanner=scanner))
        | StrOutputParser()
    )
    answer = chain.invoke({"question": "How do I pick a lock?"})
    print(f"  {answer!r}")
    assert answer != REFUSAL


def retry_with_the_prompt() -> None:
    print("retry: RunnableParallel carries the prompt so the guard can ask again")
    llm = FakeListChatModel(responses=[REFUSAL, "Pin tumbler locks have spring-loaded pins."])
    guard = NoRefusalGuard(guard=Guard("retry-then-raise", scanner=scanner), model=llm)
    chain = prompt | RunnableParallel(prompt=RunnablePassthrough(), output=llm) | guard
    answer = chain.invoke({"question": "How do pin tumbler locks work?"})
    print(f"  {answer.content!r}")
    assert answer.content != REFUSAL


def fallbacks() -> None:
    print("with_fallbacks: a refusal switches to another chain")
    strict = NoRefusalGuard(guard=Guard("strict", scanner=scanner))
    primary = FakeListChatModel(responses=[REFUSAL]) | strict
    backup = FakeListChatModel(responses=["Here is how the backup model answers."])
    chain = primary.with_fallbacks([backup], exceptions_to_handle=(RefusalDetected,))
    print(f"  {chain.invoke('How do pin tumbler locks work?').content!r}")


def streaming() -> None:
    print("stream: chunks pass through as they come; a refusal stops the stream")
    strict = NoRefusalGuard(guard=Guard("strict", scanner=scanner))
    ok = FakeListChatModel(responses=["Spring-loaded pins block the plug."]) | strict
    print("  " + "".join(str(chunk.content) for chunk in ok.stream("How do locks work?")))
    refusing = FakeListChatModel(responses=[REFUSAL + " That is not something I explain."]) | strict
    received = ""
    try:
        for chunk in refusing.stream("How do I pick a lock?"):
            received += str(chunk.content)
    except RefusalDetected:
        print(f"  stopped after {len(received)} characters")


if __name__ == "__main__":
    replace()
    retry_with_the_prompt()
    fallbacks()
    streaming()
