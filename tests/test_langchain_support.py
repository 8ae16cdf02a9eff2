"""The LangChain integration's building blocks: reading messages, the refusal exception, imports."""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

import langchain_core.exceptions as lc_exceptions
import pytest
from langchain_core.exceptions import LangChainException
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.prompt_values import ChatPromptValue
from norefusal import RefusalDetected, ScanResult, Signal
from norefusal.integrations import _langchain_errors as errors
from norefusal.integrations import langchain as lc
from norefusal.integrations._langchain_messages import (
    content_text,
    generation_candidate,
    message_candidate,
    prompt_text,
    replace_text,
)
from norefusal.policies import Candidate

RESULT = ScanResult("no", score=1.0, threshold=0.5, signal=Signal.PROVIDER, model="keyword")


# -- the exception, with and without langchain-core's ModelRefusalError --------------------


class StandInModelRefusalError(LangChainException):
    """Shaped like langchain-core's documented ModelRefusalError (message, *, raw_message)."""

    def __init__(
        self, message: str = "Model refused", *, raw_message: BaseMessage | None = None
    ) -> None:
        super().__init__(message)
        self.raw_message = raw_message


def test_installed_branch_matches_langchain_core() -> None:
    native = getattr(lc_exceptions, "ModelRefusalError", None)
    assert errors.model_refusal_error() is native
    assert issubclass(lc.LangChainRefusalDetected, RefusalDetected)
    if native is None:
        assert lc.LangChainRefusalDetected.__bases__ == (RefusalDetected,)
    else:
        assert issubclass(lc.LangChainRefusalDetected, native)


def test_detection_finds_a_model_refusal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lc_exceptions, "ModelRefusalError", StandInModelRefusalError, raising=False)
    assert errors.model_refusal_error() is StandInModelRefusalError
    monkeypatch.setattr(lc_exceptions, "ModelRefusalError", "not a class", raising=False)
    assert errors.model_refusal_error() is None


def test_error_class_is_catchable_as_both_where_model_refusal_error_exists() -> None:
    cls = errors.build_error_class(StandInModelRefusalError)
    raw = AIMessage("No.")
    err = cls(RESULT, prompt="p", output="No.", policy="strict", raw_message=raw, refusal="No.")
    assert isinstance(err, RefusalDetected)
    assert isinstance(err, StandInModelRefusalError)
    assert err.raw_message is raw  # set after ModelRefusalError's own __init__ reset it
    assert (err.prompt, err.output, err.policy, err.refusal) == ("p", "No.", "strict", "No.")
    assert "No." not in str(err)
    with pytest.raises(StandInModelRefusalError):
        raise err
    assert errors.build_error_class(None).__bases__ == (RefusalDetected,)


def test_chains_catching_model_refusal_error_catch_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from norefusal import NoRefusalScanner
    from norefusal.policies import Guard

    monkeypatch.setattr(
        errors, "LangChainRefusalDetected", errors.build_error_class(StandInModelRefusalError)
    )
    guard = lc.NoRefusalGuard(guard=Guard("strict", scanner=NoRefusalScanner(model="keyword")))
    primary = FakeListChatModel(responses=["I'm sorry, but I can't help with that."]) | guard
    chain = primary.with_fallbacks(
        [FakeListChatModel(responses=["Backup."])],
        exceptions_to_handle=(StandInModelRefusalError,),
    )
    assert chain.invoke("q").content == "Backup."


def test_as_langchain_error_keeps_context_and_pickles() -> None:
    plain = RefusalDetected(RESULT, prompt="p", output="o", policy="strict")
    err = errors.as_langchain_error(plain, raw_message=AIMessage("o"), refusal="o")
    assert isinstance(err, lc.LangChainRefusalDetected)
    assert (err.result, err.prompt, err.output, err.policy) == (RESULT, "p", "o", "strict")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err)
    assert (again.prompt, again.output, again.refusal) == ("p", "o", "o")
    assert errors.as_langchain_error(err) is err


# -- reading messages ----------------------------------------------------------------------


def test_content_text_reads_only_text() -> None:
    assert content_text("plain") == "plain"
    blocks: list[Any] = [
        "a",
        {"type": "text", "text": "b"},
        {"type": "output_text", "text": "c"},
        {"type": "image", "url": "https://x"},
        {"type": "reasoning", "reasoning": "hidden"},
        {"type": "text", "text": None},
        7,
    ]
    assert content_text(blocks) == "abc"
    assert content_text(None) == ""


def test_message_candidates() -> None:
    assert message_candidate(None) == Candidate(text=None)
    assert message_candidate("x") == Candidate(text="x")
    assert message_candidate(AIMessage("hi")) == Candidate(text="hi")
    refused = message_candidate(AIMessage("hi", additional_kwargs={"refusal": "nope"}))
    assert (refused.refusal, refused.detail) == ("nope", "additional_kwargs.refusal")
    tools = AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "1"}])
    assert message_candidate(tools) == Candidate(text="")
    gemini = AIMessage("", response_metadata={"finish_reason": "SAFETY"})
    assert message_candidate(gemini).detail == "finish_reason=SAFETY"
    assert (
        message_candidate(AIMessage("", response_metadata={"finish_reason": "stop"})).refusal
        is None
    )


def test_standard_content_blocks_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # Newer langchain-core translates provider refusals into standard blocks; emulate one.
    msg = AIMessage("fine")
    monkeypatch.setattr(
        AIMessage, "content_blocks", property(lambda self: [{"type": "refusal", "refusal": "r"}])
    )
    assert message_candidate(msg).detail == "content_blocks.refusal"
    assert message_candidate(msg, standard_blocks=False).refusal is None

    def broken(self: AIMessage) -> list[Any]:
        raise ValueError("translator failed")

    monkeypatch.setattr(AIMessage, "content_blocks", property(broken))
    assert message_candidate(msg) == Candidate(text="fine")  # a failing translator is ignored


def test_generation_candidates() -> None:
    assert generation_candidate(Generation(text="t")) == Candidate(text="t")
    filtered = generation_candidate(
        Generation(text="", generation_info={"finish_reason": "content_filter"})
    )
    assert filtered.detail == "finish_reason=content_filter"
    chat = generation_candidate(
        ChatGeneration(message=AIMessage([{"type": "refusal", "refusal": "x"}]))
    )
    assert chat.refusal == "x"


def test_prompt_text_shapes() -> None:
    convo = [
        SystemMessage("sys"),
        HumanMessage("first"),
        AIMessage("a"),
        HumanMessage("last"),
        AIMessage("b"),
    ]
    assert prompt_text(convo) == "last"
    assert prompt_text(ChatPromptValue(messages=convo)) == "last"
    assert prompt_text([SystemMessage("only system")]) == "only system"
    assert prompt_text([("user", "tuple form")]) == "tuple form"
    assert prompt_text([{"role": "user", "content": "dict form"}]) == "dict form"
    assert prompt_text(["bare string"]) == "bare string"
    assert prompt_text({"question": "q", "n": 3, "topic": "t"}) == "q\nt"
    assert prompt_text({"messages": convo}) == "last"
    assert prompt_text(HumanMessage([{"type": "text", "text": "blocks"}])) == "blocks"
    assert prompt_text(None) == ""
    assert prompt_text(3.5) == ""


def test_replace_text_keeps_the_id_and_drops_the_refusal() -> None:
    msg = AIMessage(
        "no",
        id="m1",
        additional_kwargs={"refusal": "no", "other": 1},
        tool_calls=[{"name": "f", "args": {}, "id": "c"}],
    )
    new = replace_text(msg, "replacement")
    assert (new.id, new.content, new.tool_calls) == ("m1", "replacement", [])
    assert new.additional_kwargs == {"other": 1}
    assert msg.content == "no"  # the original is untouched


# -- imports -------------------------------------------------------------------------------


def test_public_surface() -> None:
    assert sorted(lc.__all__) == [
        "AsyncNoRefusalCallbackHandler",
        "LangChainRefusalDetected",
        "NoRefusalCallbackHandler",
        "NoRefusalGuard",
        "NoRefusalMiddleware",
        "RunVerdict",
    ]


def test_imports_without_the_langchain_package() -> None:
    # Only langchain-core: the module imports, and the middleware names the extra to install.
    code = (
        "import sys; sys.modules['langchain'] = None\n"
        "from norefusal.integrations import langchain as lc\n"
        "from norefusal import MissingDependencyError\n"
        "try:\n    lc.NoRefusalMiddleware()\n"
        "except MissingDependencyError as e:\n    print('missing', e.extra)\n"
        "print(lc.NoRefusalGuard.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["missing", "langchain", "NoRefusalGuard"]
