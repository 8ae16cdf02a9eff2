"""Reading LangChain messages and generations: prompt text, candidates, provider refusal signals.

Pure functions over langchain-core objects, shared by the callback handlers, the Runnable guard
and the agent middleware. Nothing here scans or decides; it only turns LangChain shapes into
the prompt strings and :class:`~norefusal.policies.Candidate` values the decision engine takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.prompt_values import PromptValue
from norefusal.policies import Candidate

__all__ = [
    "content_text",
    "generation_candidate",
    "message_candidate",
    "prompt_text",
    "replace_text",
]

#: ``finish_reason`` / ``stop_reason`` values with which providers report a refusal or a filter.
_REFUSAL_FINISH_REASONS: Mapping[str, frozenset[str]] = {
    "finish_reason": frozenset({"content_filter", "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST"}),
    "stop_reason": frozenset({"refusal"}),
}

#: Roles of a user turn in tuple and dict messages.
_USER = frozenset({"human", "user"})

#: Text-bearing content block types (LangChain standard, OpenAI chat, OpenAI Responses).
_TEXT_TYPES = frozenset({"text", "output_text"})


def content_text(content: object) -> str:
    """The text of a message's ``content``: a string, or the text blocks of a list, joined.

    Images, audio, files, reasoning, tool calls and unknown blocks contribute nothing, so a
    message with only non-text blocks has empty text (and is not a refusal by its text).
    """
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping) and str(block.get("type")) in _TEXT_TYPES:
            text = block.get("text")
            if isinstance(text, str):
                parts.append(text)
    return "".join(parts)


#: ``non_standard`` wrappers unwrapped around a block; a payload nested deeper (or a cyclic
#: one) is not read as a refusal signal, instead of overflowing the stack.
_MAX_WRAPPERS = 8


def _block_refusal(block: object) -> str | None:
    """The refusal text of a ``{"type": "refusal"}`` block (also wrapped as ``non_standard``)."""
    for _ in range(_MAX_WRAPPERS):
        if not isinstance(block, Mapping) or block.get("type") != "non_standard":
            break
        block = block.get("value")
    if not isinstance(block, Mapping) or block.get("type") != "refusal":
        return None
    text = block.get("refusal")
    # The standard block allows an empty string ("no message provided"): still a refusal.
    return text if isinstance(text, str) and text else "refusal"


def _refusal_signal(message: BaseMessage, *, standard_blocks: bool) -> tuple[str, str] | None:
    """``(refusal text, detail)`` for the first native refusal signal on ``message``, if any."""
    refusal = message.additional_kwargs.get("refusal")
    if isinstance(refusal, str) and refusal:
        return refusal, "additional_kwargs.refusal"
    if isinstance(message.content, list):
        for block in message.content:
            if (text := _block_refusal(block)) is not None:
                return text, "content.refusal"
    # Newer langchain-core translates provider refusals into standard "refusal" blocks here;
    # a translator may also fail on odd provider payloads, which must not break the scan.
    blocks: Iterable[object] = ()
    if standard_blocks:
        try:
            blocks = message.content_blocks
        except Exception:
            blocks = ()
    for standard in blocks:
        if (text := _block_refusal(standard)) is not None:
            return text, "content_blocks.refusal"
    for key, values in _REFUSAL_FINISH_REASONS.items():
        reason = message.response_metadata.get(key)
        if isinstance(reason, str) and reason in values:
            return reason, f"{key}={reason}"
    return None


def message_candidate(
    message: BaseMessage | str | None, *, standard_blocks: bool = True
) -> Candidate:
    """A :class:`Candidate` for one model output message (or plain string).

    ``text`` is the message's text blocks (empty for tool calls only, images, or empty content);
    ``refusal`` and ``detail`` carry a provider-native signal: ``additional_kwargs["refusal"]``,
    a ``refusal`` content block (raw or standard), or a refusal ``finish_reason``/``stop_reason``.
    ``standard_blocks=False`` skips translating to standard blocks (cheaper, for stream chunks).
    """
    if message is None:
        return Candidate(text=None)
    if isinstance(message, str):
        return Candidate(text=message)
    signal = _refusal_signal(message, standard_blocks=standard_blocks)
    text = content_text(message.content)
    if signal is None:
        return Candidate(text=text)
    return Candidate(text=text, refusal=signal[0], detail=signal[1])


def generation_candidate(generation: Generation) -> Candidate:
    """A :class:`Candidate` for one generation of an ``LLMResult`` (chat or text model)."""
    if isinstance(generation, ChatGeneration):
        return message_candidate(generation.message)
    candidate = Candidate(text=generation.text)
    info = generation.generation_info or {}
    reason = info.get("finish_reason")
    if isinstance(reason, str) and reason in _REFUSAL_FINISH_REASONS["finish_reason"]:
        return Candidate(text=generation.text, refusal=reason, detail=f"finish_reason={reason}")
    return candidate


def _messages_prompt(messages: Sequence[object]) -> str:
    # The request the model answered is the latest user turn; walk back from the end so a
    # conversation of any length costs only the turns after it.
    last_text = ""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return content_text(message.content)
        if isinstance(message, str):  # LangChain reads a bare string as a user message
            return message
        if (
            isinstance(message, BaseMessage)
            and not last_text
            and not isinstance(message, AIMessage)
        ):
            last_text = content_text(message.content)
        # str(): a role given as a list or dict is unhashable, and must not raise here.
        elif isinstance(message, tuple) and len(message) == 2 and str(message[0]) in _USER:
            return content_text(message[1])
        elif isinstance(message, Mapping) and str(message.get("role")) in _USER:
            return content_text(message.get("content"))
    return last_text


def prompt_text(value: object) -> str:
    """The prompt to scan against, from whatever a model or chain was given.

    A string is used as is; messages (a list, a ``PromptValue``, a message) give the text of the
    last user message (or, with none, of the last non-AI message); a mapping of chain inputs
    gives its string values joined by newlines. Anything else gives ``""`` (scan the output
    alone), never an error.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, PromptValue):
        return _messages_prompt(value.to_messages())
    if isinstance(value, BaseMessage):
        return content_text(value.content)
    if isinstance(value, Sequence):
        return _messages_prompt(value)
    if isinstance(value, Mapping):
        if "messages" in value and isinstance(value["messages"], Sequence):
            return _messages_prompt(value["messages"])
        return "\n".join(v for v in value.values() if isinstance(v, str))
    return ""


def replace_text(message: AIMessage, text: str) -> AIMessage:
    """A copy of ``message`` with ``text`` as its content, keeping its id (so it replaces it).

    The refusal signal is dropped with the refused content; tool calls go too, since a
    replacement message answers in text and must not trigger the refused tool run.
    """
    kwargs: dict[str, Any] = {
        k: v for k, v in message.additional_kwargs.items() if k not in {"refusal", "tool_calls"}
    }
    return AIMessage(
        content=text,
        id=message.id,
        name=message.name,
        additional_kwargs=kwargs,
        response_metadata=dict(message.response_metadata),
        usage_metadata=message.usage_metadata,
    )
