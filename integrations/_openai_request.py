"""Pure OpenAI request/response logic: which calls are guarded, prompts, candidates, rewrites.

Nothing here does I/O: the sync and async clients in :mod:`norefusal.integrations.openai`
share all of it and only send requests.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from norefusal.policies import Candidate
from openai._constants import RAW_RESPONSE_HEADER
from openai._legacy_response import LegacyAPIResponse
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.responses import Response, ResponseOutputMessage, ResponseOutputText

__all__ = [
    "Endpoint",
    "build_prompt",
    "candidates",
    "endpoint_of",
    "fallback_body",
    "list_field",
    "replace_response",
    "retry_body",
    "str_field",
    "wants_structured_output",
]

_ROLE_TAG = {
    "system": "<|system|>",
    "developer": "<|system|>",
    "user": "<|user|>",
    "assistant": "<|assistant|>",
}
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
#: The id of the message a replacement adds to a Responses API output that has none.
REPLACEMENT_ITEM_ID = "msg_norefusal_replacement"


class Endpoint(str, enum.Enum):
    """The generation endpoints a guarded client checks."""

    CHAT = "/chat/completions"
    RESPONSES = "/responses"


def endpoint_of(path: str, body: object, options: Mapping[str, Any]) -> Endpoint | None:
    """The endpoint a ``post`` call generates text on, or ``None`` when it is not guarded.

    ``with_streaming_response`` calls (raw header ``"stream"``) are not guarded: their body is
    read by the caller, after this client has returned.
    """
    if not isinstance(body, Mapping):
        return None
    try:
        endpoint = Endpoint(path)
    except ValueError:
        return None
    headers = options.get("headers") or {}
    if isinstance(headers, Mapping) and headers.get(RAW_RESPONSE_HEADER) == "stream":
        return None
    return endpoint


# -- prompts ---------------------------------------------------------------------------------


def _content_text(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable) and not isinstance(content, (bytes, Mapping)):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, Mapping)
            and str(part.get("type")) in _TEXT_PARTS  # str(): a list "type" is unhashable
            and isinstance(part.get("text"), str)
        ]
        return "\n".join(texts)
    return ""


def _turns(messages: object) -> list[str]:
    turns: list[str] = []
    if not isinstance(messages, Iterable) or isinstance(messages, (str, bytes, Mapping)):
        return turns
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        # Tool and function results are skipped: often long, they would push the user's turn
        # out of the part of the prompt a model reads.
        tag = _ROLE_TAG.get(str(message.get("role", "")))
        if tag is None or message.get("type", "message") != "message":
            continue
        text = _content_text(message.get("content"))
        if text:
            turns.append(tag + text)
    return turns


def build_prompt(endpoint: Endpoint, body: Mapping[str, Any]) -> str:
    """The scanner's prompt for a request, role-tagged ``<|system|>…<|user|>…<|assistant|>…``.

    Chat Completions use ``messages``; the Responses API uses ``instructions`` (a system turn)
    and ``input`` (a string is one user turn). Images, audio, files and tool results are left
    out. Presets that read the response alone ignore the prompt.
    """
    if endpoint is Endpoint.CHAT:
        return "".join(_turns(body.get("messages")))
    turns: list[str] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        turns.append("<|system|>" + instructions)
    user_input = body.get("input")
    if isinstance(user_input, str):
        if user_input:
            turns.append("<|user|>" + user_input)
    else:
        turns.extend(_turns(user_input))
    return "".join(turns)


# -- candidates ------------------------------------------------------------------------------


def parsed_of(response: object) -> object:
    """The parsed body of a response: ``with_raw_response`` objects are parsed (and cached)."""
    if isinstance(response, LegacyAPIResponse):
        return response.parse()
    return response


def str_field(obj: object, name: str) -> str | None:
    """``obj.name`` when it is a string; the client builds models without validation, so a
    malformed body can lack a field or hold another type, and that must not break the guard."""
    value = getattr(obj, name, None)
    return value if isinstance(value, str) else None


def list_field(obj: object, name: str) -> list[Any]:
    """``obj.name`` when it is a list, else ``[]`` (``"choices": true`` is not iterable)."""
    value = getattr(obj, name, None)
    return value if isinstance(value, list) else []


def _chat_candidates(completion: ChatCompletion) -> list[Candidate]:
    found: list[Candidate] = []
    for choice in list_field(completion, "choices"):
        message = getattr(choice, "message", None)
        content = str_field(message, "content")
        refusal = str_field(message, "refusal")
        if refusal:
            found.append(Candidate(content or refusal, refusal=refusal, detail="message.refusal"))
        elif str_field(choice, "finish_reason") == "content_filter":
            found.append(
                Candidate(content, refusal="content_filter", detail="finish_reason=content_filter")
            )
        else:
            found.append(Candidate(content))
    return found


def response_candidate(response: Response) -> Candidate:
    """One candidate for a Responses API response: its text, or the refusal that stands for it."""
    texts: list[str] = []
    refusals: list[str] = []
    for item in list_field(response, "output"):
        if str_field(item, "type") != "message":
            continue
        for part in list_field(item, "content"):
            kind = str_field(part, "type")
            if kind == "output_text":
                texts.append(str_field(part, "text") or "")
            elif kind == "refusal":
                refusals.append(str_field(part, "refusal") or "")
    text = "".join(texts)
    if any(refusals):
        refusal = "\n".join(r for r in refusals if r)
        return Candidate(text or refusal, refusal=refusal, detail="refusal content item")
    details = getattr(response, "incomplete_details", None)
    if str_field(details, "reason") == "content_filter":
        return Candidate(
            text, refusal="content_filter", detail="incomplete_details.reason=content_filter"
        )
    return Candidate(text)


def candidates(response: object) -> list[Candidate]:
    """The texts to check in a response (one per choice for Chat Completions).

    Provider signals come first: ``message.refusal``, ``finish_reason == "content_filter"``,
    refusal content items and ``incomplete_details.reason == "content_filter"`` decide without
    the classifier. A choice with tool calls and no text is a candidate with no text: not a
    refusal. A response of another shape yields no candidates.
    """
    parsed = parsed_of(response)
    if isinstance(parsed, ChatCompletion):
        return _chat_candidates(parsed)
    if isinstance(parsed, Response):
        return [response_candidate(parsed)]
    return []


# -- rewrites for retry, fallback and replace ------------------------------------------------


def retry_body(
    endpoint: Endpoint, body: Mapping[str, Any], instruction: str | None
) -> dict[str, Any]:
    """The same request, with the policy's instruction added when it has one.

    Chat Completions get it as a last system message; the Responses API gets it appended to
    ``instructions``.
    """
    new = dict(body)
    if not instruction:
        return new
    if endpoint is Endpoint.CHAT:
        new["messages"] = [*body.get("messages", []), {"role": "system", "content": instruction}]
    else:
        previous = body.get("instructions")
        new["instructions"] = f"{previous}\n\n{instruction}" if previous else instruction
    return new


def fallback_body(body: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The same request sent to ``model``."""
    return {**body, "model": model}


def wants_structured_output(body: Mapping[str, Any]) -> bool:
    """Whether the request asked for JSON-schema output (``response_format`` or ``text.format``)."""
    fmt = body.get("response_format")
    if fmt is None:
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, Mapping) else None
    return isinstance(fmt, Mapping) and fmt.get("type") == "json_schema"


def _replace_chat(
    completion: ChatCompletion, indices: Sequence[int], message: str, *, structured: bool
) -> ChatCompletion:
    new = completion.model_copy(deep=True)
    for i in indices:
        choice = new.choices[i]
        msg = getattr(choice, "message", None)
        if not isinstance(msg, ChatCompletionMessage):  # a malformed body: no usable message
            msg = choice.message = ChatCompletionMessage.model_construct(role="assistant")
        # A structured-output request gets the message where the API puts refusals, so that
        # parsers expecting JSON in ``content`` do not choke on it.
        msg.content, msg.refusal = (None, message) if structured else (message, None)
        if hasattr(msg, "parsed"):
            msg.parsed = None
    return new


def _replace_response(response: Response, message: str) -> Response:
    new = response.model_copy(deep=True)
    text = ResponseOutputText(type="output_text", text=message, annotations=[])
    kept: list[Any] = []
    placed = False
    for item in list_field(new, "output"):
        if getattr(item, "type", None) != "message" or not hasattr(item, "content"):
            kept.append(item)
        elif not placed:
            item.content = [text]
            kept.append(item)
            placed = True
    if not placed:
        kept.append(
            ResponseOutputMessage(
                id=REPLACEMENT_ITEM_ID,
                type="message",
                role="assistant",
                status="completed",
                content=[text],
            )
        )
    new.output = kept
    return new


def replace_response(
    response: object, indices: Sequence[int], message: str, *, structured: bool = False
) -> object:
    """A copy of ``response`` whose refused candidates hold ``message``; the original is kept.

    For ``with_raw_response`` calls the raw object is copied and its parsed body replaced, so
    ``.parse()`` returns the replacement while headers and status stay the server's.
    """
    if isinstance(response, LegacyAPIResponse):
        parsed = replace_response(response.parse(), indices, message, structured=structured)
        raw = _copy_raw(response)
        # The SDK caches the parsed body per type; seeding the cache is how a raw object
        # carries a replaced body without re-reading the HTTP response.
        raw._parsed_by_type = {raw._cast_to: parsed}
        return raw
    if isinstance(response, ChatCompletion):
        return _replace_chat(response, indices, message, structured=structured)
    if isinstance(response, Response):
        return _replace_response(response, message)
    return response


def _copy_raw(raw: LegacyAPIResponse[Any]) -> LegacyAPIResponse[Any]:
    return LegacyAPIResponse(
        raw=raw.http_response,
        cast_to=raw._cast_to,
        client=raw._client,
        stream=raw._stream,
        stream_cls=raw._stream_cls,
        options=raw._options,
        retries_taken=raw.retries_taken,
    )
