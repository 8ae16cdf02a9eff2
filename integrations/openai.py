"""Refusal detection for OpenAI's Python client: every generated response checked inline.

    >>> from norefusal.integrations.openai import GuardedOpenAI
    >>> client = GuardedOpenAI(policy="strict")          # instead of OpenAI(...)
    >>> client.chat.completions.create(model="gpt-4o-mini", messages=[...])  # raises on a refusal

or, for a client you already have, ``client = guard(client, policy="strict")``.

What is checked: ``chat.completions.create`` (every choice when ``n > 1``),
``chat.completions.parse``, ``chat.completions.stream``, ``responses.create``,
``responses.parse``, ``responses.stream``, their ``with_raw_response`` forms, and the async
twins. The guard hooks the client's ``post`` for the two generation endpoints
(``/chat/completions`` and ``/responses``), so every resource and helper method built on them
is covered and nothing else changes. ``with_streaming_response`` calls are passed through
unchecked (their body is read after the client returns).

How: provider signals first (``message.refusal``, ``delta.refusal``, refusal content items,
``finish_reason == "content_filter"``, ``incomplete_details.reason == "content_filter"``),
then the scanner, through the policy's :class:`~norefusal.policies.Guard`: flag, raise
:class:`~norefusal.RefusalDetected`, replace the text, retry (the same request, plus the
policy's instruction as a last system message, or appended to ``instructions``), or fall back
to ``policy.fallback_model``. The last decision made in the current thread or task is
:func:`last_outcome`; every decision also goes to the guard's ``on_decision`` hook and metrics.

Streams are checked as they flow (see :class:`GuardedStream`): chunks are held until the first
``stream_holdback`` characters are cleared, so a refusal at the start is caught before the
consumer sees it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, cast

from norefusal import ConfigurationError
from norefusal.policies import Guard, Outcome, Policy
from openai import AsyncOpenAI, AsyncStream, OpenAI, Stream
from openai._legacy_response import LegacyAPIResponse

from ._openai_request import (
    Endpoint,
    build_prompt,
    candidates,
    endpoint_of,
    fallback_body,
    replace_response,
    retry_body,
    wants_structured_output,
)
from ._openai_stream import GuardedAsyncStream, GuardedStream, StreamCore

if TYPE_CHECKING:
    from norefusal.policies import FallbackRequest, RetryRequest
    from typing_extensions import Self

__all__ = [
    "DEFAULT_STREAM_HOLDBACK",
    "GuardedAsyncOpenAI",
    "GuardedAsyncStream",
    "GuardedOpenAI",
    "GuardedStream",
    "guard",
    "last_outcome",
]

#: Characters of each streamed output held back until the guard has cleared them.
DEFAULT_STREAM_HOLDBACK = 160

_ClientT = TypeVar("_ClientT", OpenAI, AsyncOpenAI)
_LAST: ContextVar[Outcome[Any] | None] = ContextVar("norefusal_openai_last_outcome", default=None)


def last_outcome() -> Outcome[Any] | None:
    """The :class:`~norefusal.policies.Outcome` of the last non-streamed call guarded in this
    thread or asyncio task, or ``None``. Streams carry theirs (``stream.verdict``,
    ``stream.action``)."""
    return _LAST.get()


class _Settings:
    """The guard of one client and its copies; the :class:`Guard` is built at first use."""

    def __init__(self, policy: Policy | str | None, guard: Guard | None, holdback: int) -> None:
        if policy is not None and guard is not None:
            raise ConfigurationError(
                "Pass either policy= or guard= (a Guard already has a policy), not both."
            )
        if not isinstance(holdback, int) or isinstance(holdback, bool) or holdback < 0:
            raise ConfigurationError(
                f"stream_holdback must be a number of characters >= 0, got {holdback!r}."
            )
        self._policy = policy
        self._guard = guard
        self.holdback = holdback
        self._lock = threading.Lock()

    @property
    def guard(self) -> Guard:
        if self._guard is None:
            with self._lock:
                if self._guard is None:
                    self._guard = Guard(self._policy)
        return self._guard


class _GuardedClient:
    """What both guarded clients share: their guard settings, kept by copy() and with_options().

    It comes first among the bases, so ``super()`` here is the OpenAI client class.
    """

    _norefusal: _Settings

    def __init__(
        self,
        *,
        policy: Policy | str | None = None,
        guard: Guard | None = None,
        stream_holdback: int = DEFAULT_STREAM_HOLDBACK,
        **kwargs: Any,
    ) -> None:
        self._norefusal = _Settings(policy, guard, stream_holdback)
        cast("Any", super()).__init__(**kwargs)

    @property
    def guard(self) -> Guard:
        """The :class:`~norefusal.policies.Guard` applying the policy (its metrics, its policy)."""
        return self._norefusal.guard

    def copy(self, *args: Any, **kwargs: Any) -> Self:
        copied = cast("Self", cast("Any", super()).copy(*args, **kwargs))
        copied._norefusal = self._norefusal
        return copied

    with_options = copy


class _Call:
    """One guarded request: the pure parts shared by the sync and async clients."""

    def __init__(self, settings: _Settings, endpoint: Endpoint, body: Mapping[str, Any]) -> None:
        self.guard = settings.guard
        self.holdback = settings.holdback
        self.endpoint = endpoint
        self.body = body
        self.prompt = build_prompt(endpoint, body)
        self.structured = wants_structured_output(body)

    def retry_body(self, request: RetryRequest) -> dict[str, Any]:
        return retry_body(self.endpoint, self.body, request.instruction)

    def fallback_body(self, request: FallbackRequest) -> dict[str, Any]:
        return fallback_body(self.body, request.model)

    def replace(self, response: Any, indices: Sequence[int], message: str) -> Any:
        return replace_response(response, indices, message, structured=self.structured)

    def wrap_stream(self, response: object, *, is_async: bool) -> object:
        """The guarded twin of a stream (or of the stream inside a raw response)."""
        if isinstance(response, LegacyAPIResponse):
            # A raw streamed response: its parsed body is the stream; cache the guarded one
            # so that ``.parse()`` hands it out.
            inner = response.parse()
            response._parsed_by_type[response._cast_to] = self.wrap_stream(inner, is_async=is_async)
            return response
        core = StreamCore(
            self.guard,
            self.prompt,
            self.endpoint,
            holdback=self.holdback,
            structured=self.structured,
        )
        if is_async and isinstance(response, AsyncStream):
            return GuardedAsyncStream(response, core)
        if not is_async and isinstance(response, Stream):
            return GuardedStream(response, core)
        return response


class GuardedOpenAI(_GuardedClient, OpenAI):
    """:class:`openai.OpenAI` whose generated responses are checked for refusals.

    Takes every option of :class:`openai.OpenAI`, plus:

    Args:
        policy: a :class:`~norefusal.policies.Policy` or a built-in policy name; ``None`` is
            the built-in ``"monitor"`` policy (flag only).
        guard: a :class:`~norefusal.policies.Guard` to use (share one between clients for
            shared metrics and hooks); exclusive with ``policy``.
        stream_holdback: characters of each streamed output held back until cleared; 0 passes
            chunks through at once (a refusal then ends the stream, but after the consumer saw
            its start).

    ``copy()`` and ``with_options()`` return guarded clients sharing this guard.
    """

    def post(self, path: str, *args: Any, **kwargs: Any) -> Any:
        endpoint = endpoint_of(path, kwargs.get("body"), kwargs.get("options") or {})
        parent_post = super().post
        if endpoint is None:
            return parent_post(path, *args, **kwargs)
        call = _Call(self._norefusal, endpoint, kwargs["body"])

        def send(body: Mapping[str, Any]) -> Any:
            return parent_post(path, *args, **{**kwargs, "body": body})

        response = send(call.body)
        if kwargs.get("stream"):
            return call.wrap_stream(response, is_async=False)
        outcome = call.guard.run(
            call.prompt,
            response,
            candidates=candidates,
            call_again=lambda request: send(call.retry_body(request)),
            call_fallback=lambda request: send(call.fallback_body(request)),
            replace=call.replace,
        )
        _LAST.set(outcome)
        return outcome.response


class GuardedAsyncOpenAI(_GuardedClient, AsyncOpenAI):
    """:class:`openai.AsyncOpenAI` whose generated responses are checked for refusals.

    The async twin of :class:`GuardedOpenAI`, with the same options; scans never block the
    event loop.
    """

    async def post(self, path: str, *args: Any, **kwargs: Any) -> Any:
        endpoint = endpoint_of(path, kwargs.get("body"), kwargs.get("options") or {})
        parent_post = super().post
        if endpoint is None:
            return await parent_post(path, *args, **kwargs)
        call = _Call(self._norefusal, endpoint, kwargs["body"])

        async def send(body: Mapping[str, Any]) -> Any:
            return await parent_post(path, *args, **{**kwargs, "body": body})

        response = await send(call.body)
        if kwargs.get("stream"):
            return call.wrap_stream(response, is_async=True)

        async def call_again(request: RetryRequest) -> Any:
            return await send(call.retry_body(request))

        async def call_fallback(request: FallbackRequest) -> Any:
            return await send(call.fallback_body(request))

        outcome = await call.guard.arun(
            call.prompt,
            response,
            candidates=candidates,
            call_again=call_again,
            call_fallback=call_fallback,
            replace=call.replace,
        )
        _LAST.set(outcome)
        return outcome.response


_GUARDED_CLASSES: dict[type[Any], type[Any]] = {
    OpenAI: GuardedOpenAI,
    AsyncOpenAI: GuardedAsyncOpenAI,
}
_classes_lock = threading.Lock()


def _guarded_class(cls: type[_ClientT]) -> type[_ClientT]:
    """The guarded twin of a client class (``AzureOpenAI`` -> ``GuardedAzureOpenAI``)."""
    with _classes_lock:
        guarded = _GUARDED_CLASSES.get(cls)
        if guarded is None:
            base = GuardedOpenAI if issubclass(cls, OpenAI) else GuardedAsyncOpenAI
            guarded = type(f"Guarded{cls.__name__}", (base, cls), {"__module__": __name__})
            _GUARDED_CLASSES[cls] = guarded
        return guarded


def guard(
    client: _ClientT,
    *,
    policy: Policy | str | None = None,
    guard: Guard | None = None,
    stream_holdback: int = DEFAULT_STREAM_HOLDBACK,
) -> _ClientT:
    """A guarded client made from an existing ``OpenAI`` or ``AsyncOpenAI`` client.

    ``client`` itself is not modified. The new client is an instance of a subclass of
    ``type(client)`` (so ``isinstance`` holds, ``AzureOpenAI`` included) with the same
    configuration, and it **shares** ``client``'s HTTP connection pool: closing either closes
    both. Guarding a guarded client replaces its guard rather than adding a second one.

    Args:
        client: an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` (or a subclass of either).
        policy: a :class:`~norefusal.policies.Policy` or a built-in policy name; ``None`` is
            the built-in ``"monitor"`` policy (flag only).
        guard: a :class:`~norefusal.policies.Guard` to use instead; exclusive with ``policy``.
        stream_holdback: characters of each streamed output held back until cleared.

    Raises:
        TypeError: ``client`` is not an OpenAI client.
        ConfigurationError: both ``policy`` and ``guard`` were given, or a bad holdback.
    """
    if not isinstance(client, (OpenAI, AsyncOpenAI)):
        raise TypeError(
            f"guard() takes an openai.OpenAI or openai.AsyncOpenAI client, not "
            f"{type(client).__name__}."
        )
    settings = _Settings(policy, guard, stream_holdback)
    cls = type(client)
    if not issubclass(cls, (GuardedOpenAI, GuardedAsyncOpenAI)):
        cls = _guarded_class(cls)
    guarded = cls.__new__(cls)
    # Same configuration and connection pool; resources (``chat``, ``responses``, ...) are
    # cached properties bound to their client, so they are left to be built for the new one.
    state = {
        name: value
        for name, value in vars(client).items()
        if not isinstance(getattr(cls, name, None), cached_property)
    }
    vars(guarded).update(state)
    cast("GuardedOpenAI | GuardedAsyncOpenAI", guarded)._norefusal = settings
    return guarded
