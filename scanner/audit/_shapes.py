"""Row shapes of a log: what to score in one row, and where its prompt comes from.

Three shapes, one per job:

- ``pairs``: ``prompt`` and ``response`` (or ``output``), as ``norefusal scan`` reads them.
- ``messages``: an OpenAI chat ``messages`` list; every assistant turn is scored, with the
  conversation before it (role-tagged) as its prompt.
- ``batch``: OpenAI Batch API output lines (``custom_id``, ``response.body``, ``error``); the
  prompts come from the batch's request file, joined on ``custom_id``.

Everything here is pure: a row in, the texts to score out, or a :class:`RowError` whose reason
never quotes the row's text.
"""

from __future__ import annotations

import contextlib
import enum
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._errors import NoRefusalError
from .._text import role_tagged, split_conversation

__all__ = [
    "RequestIndex",
    "RowError",
    "Shape",
    "ShapeError",
    "Turn",
    "fields_of",
    "shape_of",
    "turns_of",
]


class Shape(str, enum.Enum):
    """The shape of every row of one audit."""

    PAIRS = "pairs"
    MESSAGES = "messages"
    BATCH = "batch"


class ShapeError(NoRefusalError, ValueError):
    """The input cannot be audited as one job: rows of different shapes, or a request file."""


class RowError(ValueError):
    """One row cannot be scored; the job records it in the errors file and goes on."""


class Turn(NamedTuple):
    """One output to score (a named tuple: one is built per output, millions per audit).

    Attributes:
        turn: which output of the row: the index of the assistant message in ``messages``, the
            choice index in a Batch API response, 0 for a ``pairs`` row.
        prompt: the prompt (role-tagged for a conversation).
        output: the text to score.
        provider: the provider's own refusal signal, which decides without the classifier
            (``"message.refusal"``, ``"finish_reason=content_filter"``...), or ``None``.
    """

    turn: int
    prompt: str
    output: str
    provider: str | None = None


def _is_batch_output(row: Mapping[str, Any]) -> bool:
    return "custom_id" in row and isinstance(row.get("response"), dict | None) and "error" in row


def shape_of(row: Mapping[str, Any]) -> Shape | None:
    """The shape a row has, or ``None`` when it has none of them.

    Raises:
        ShapeError: the row is a Batch API *request* (it belongs in ``--requests``).
    """
    if _is_batch_output(row):
        return Shape.BATCH
    if "messages" in row:
        return Shape.MESSAGES
    if "response" in row or "output" in row:
        return Shape.PAIRS
    if "custom_id" in row and "body" in row:
        raise ShapeError(
            "this is an OpenAI Batch API request line (custom_id, body): give request files "
            "with --requests and audit the batch's output file."
        )
    return None


# -- the Batch API ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    prompt: str | None  # None: an endpoint whose output is not text (embeddings)
    metadata: Mapping[str, Any]


class RequestIndex:
    """Batch API requests by ``custom_id``: the prompt of each and its ``metadata``.

    Built from request files (``{"custom_id", "method", "url", "body"}`` per line). The prompt
    is the request's conversation, role-tagged as in the ``messages`` shape: ``body.messages``
    for ``/v1/chat/completions``, ``body.instructions`` and ``body.input`` for
    ``/v1/responses``, ``body.prompt`` for ``/v1/completions``.
    """

    def __init__(self) -> None:
        self._requests: dict[str, _Request] = {}
        self._where: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._requests)

    def add(self, row: Mapping[str, Any], where: str) -> None:
        """Add one request line; ``where`` names it (``"FILE, line N"``) in errors.

        Raises:
            ValueError: the line is not a request, or repeats a ``custom_id``.
        """
        custom_id = row.get("custom_id")
        body = row.get("body")
        if not isinstance(custom_id, str) or not isinstance(body, dict):
            raise ValueError(f"{where}: a Batch API request needs 'custom_id' and a 'body' object.")
        if custom_id in self._requests:
            raise ValueError(
                f"{where}: custom_id {custom_id!r} is already used at {self._where[custom_id]}; "
                "custom_ids must be unique across the request files of one audit (audit each "
                "batch on its own when they are not)."
            )
        metadata = body.get("metadata")
        self._requests[custom_id] = _Request(
            _request_prompt(str(row.get("url", "")), body, where),
            metadata if isinstance(metadata, dict) else {},
        )
        self._where[custom_id] = where

    def get(self, custom_id: object) -> _Request:
        if not isinstance(custom_id, str) or custom_id not in self._requests:
            raise RowError(
                "its custom_id is in none of the request files (--requests)"
                if isinstance(custom_id, str)
                else "'custom_id' must be a string"
            )
        return self._requests[custom_id]


def _request_prompt(url: str, body: Mapping[str, Any], where: str) -> str | None:
    try:
        if url.endswith("/chat/completions") or "messages" in body:
            return role_tagged(body.get("messages"))
        if url.endswith("/responses") or "input" in body:
            given = body.get("input")
            items = [{"role": "user", "content": given}] if isinstance(given, str) else given
            if not isinstance(items, list):
                raise TypeError("'input' must be a string or a list of items")
            instructions = body.get("instructions")
            if isinstance(instructions, str) and instructions:
                items = [{"role": "system", "content": instructions}, *items]
            return role_tagged(items)
        if url.endswith("/completions") and isinstance(body.get("prompt"), str):
            return str(body["prompt"])
    except TypeError as exc:
        raise ValueError(f"{where}: bad request body ({exc}).") from None
    return None


def _batch_turns(row: Mapping[str, Any], requests: RequestIndex | None) -> list[Turn]:
    error = row.get("error")
    response = row.get("response")
    if error is not None or not isinstance(response, dict):
        code = error.get("code") if isinstance(error, dict) else None
        raise RowError(f"the request failed ({code or 'no response'})")
    status = response.get("status_code")
    body = response.get("body")
    if status != 200 or not isinstance(body, dict):
        raise RowError(f"the request failed (status {status})")
    if requests is None:
        raise RowError("no request file (--requests) to recover its prompt")
    prompt = requests.get(row.get("custom_id")).prompt
    if prompt is None:
        raise RowError("its endpoint returns no text to score")
    if body.get("object") == "response":
        return [_response_turn(body, prompt)]
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise RowError("the response body has no 'choices'")
    turns = []
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise RowError("a choice is not an object")
        index = choice.get("index", position)
        message = choice.get("message")
        if isinstance(message, dict):
            text = message.get("content")
            refusal = message.get("refusal")
        else:  # /v1/completions
            text, refusal = choice.get("text"), None
        text = text if isinstance(text, str) else ""
        if isinstance(refusal, str) and refusal:
            turns.append(Turn(index, prompt, text or refusal, "message.refusal"))
        elif choice.get("finish_reason") == "content_filter":
            turns.append(Turn(index, prompt, text, "finish_reason=content_filter"))
        else:
            turns.append(Turn(index, prompt, text))
    return turns


def _response_turn(body: Mapping[str, Any], prompt: str) -> Turn:
    texts: list[str] = []
    refusals: list[str] = []
    for item in body.get("output") or ():
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        for part in item.get("content") or ():
            if isinstance(part, dict) and part.get("type") == "output_text":
                texts.append(str(part.get("text") or ""))
            elif isinstance(part, dict) and part.get("type") == "refusal":
                refusals.append(str(part.get("refusal") or ""))
    text = "".join(texts)
    if any(refusals):
        return Turn(0, prompt, text or "\n".join(r for r in refusals if r), "refusal content item")
    details = body.get("incomplete_details")
    if isinstance(details, dict) and details.get("reason") == "content_filter":
        return Turn(0, prompt, text, "incomplete_details.reason=content_filter")
    return Turn(0, prompt, text)


# -- every shape -----------------------------------------------------------------------------


def _message_turns(messages: object) -> list[Turn]:
    if not isinstance(messages, list | tuple):
        raise RowError("'messages' must be a list")
    messages = list(messages)
    turns = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RowError("each message must be an object with 'role' and 'content'")
        if message.get("role") != "assistant":
            continue
        try:
            prompt, output = split_conversation(messages[: index + 1])
        except (TypeError, ValueError) as exc:
            raise RowError(f"bad 'messages' ({exc})") from None
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            turns.append(Turn(index, prompt, output or refusal, "message.refusal"))
        else:
            turns.append(Turn(index, prompt, output))
    if not turns:
        raise RowError("'messages' has no assistant message to score")
    return turns


def _pair_turn(row: Mapping[str, Any]) -> list[Turn]:
    output = row.get("response", row.get("output"))
    prompt = row.get("prompt") or ""
    if not isinstance(output, str) or not isinstance(prompt, str):
        raise RowError("'response' and 'prompt' must be strings")
    return [Turn(0, prompt, output)]


def turns_of(shape: Shape, row: Mapping[str, Any], requests: RequestIndex | None) -> list[Turn]:
    """The outputs to score in ``row``, a row of ``shape``.

    Raises:
        RowError: the row cannot be scored (bad values, a failed Batch API request...).
    """
    if shape is Shape.PAIRS:
        return _pair_turn(row)
    if shape is Shape.MESSAGES:
        return _message_turns(row.get("messages"))
    return _batch_turns(row, requests)


def fields_of(
    shape: Shape, row: Mapping[str, Any], requests: RequestIndex | None
) -> Mapping[str, Any]:
    """Where kept columns, ``model`` and the timestamp are looked up.

    The row itself; for a Batch API row also (where the row has no such field) the response
    body (``model``, ``created``, ``created_at``) and the request's ``metadata``.
    """
    if shape is not Shape.BATCH:
        return row
    response = row.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    found: list[Mapping[str, Any]] = [row]
    if isinstance(body, dict):
        found.append(body)
    if requests is not None:
        with contextlib.suppress(RowError):  # turns_of reports it
            found.append(requests.get(row.get("custom_id")).metadata)
    return ChainMap(*found)  # type: ignore[arg-type]
