"""Guarded OpenAI streams: one decision core, driven by a sync and an async stream class.

The core (:class:`StreamCore`) is a generator that does no I/O: it asks its driver to pull
the next upstream chunk, to feed a monitor, to run a check or a verdict, to close the
upstream response, and to emit a chunk to the consumer. :class:`GuardedStream` and
:class:`GuardedAsyncStream` only carry those requests out, so the logic exists once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from norefusal.policies import Candidate
from openai import AsyncStream, Stream
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseIncompleteEvent,
    ResponseOutputItem,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseRefusalDeltaEvent,
    ResponseTextDeltaEvent,
)

from ._openai_request import Endpoint, list_field, replace_response, str_field

if TYPE_CHECKING:
    from norefusal import ScanResult
    from norefusal.policies import Guard, GuardMonitor, StreamAction

__all__ = ["GuardedAsyncStream", "GuardedStream", "StreamCore"]

_T = TypeVar("_T")

#: Responses API events kept when a replacement drops the held ones: the stream's lifecycle.
_LIFECYCLE = frozenset({"response.created", "response.queued", "response.in_progress"})
#: Key of provider signals that concern a whole Responses API response, not one output item.
_WHOLE = -1


# -- what the core asks its driver to do ------------------------------------------------------


class _Pull:
    """Send back the next upstream item, :data:`END`, or a :class:`Failed`."""


class _Close:
    """Close the upstream HTTP response."""


PULL = _Pull()
CLOSE = _Close()
END = object()


@dataclass(frozen=True)
class Failed:
    """What the driver sends back when the upstream stream raised."""

    error: Exception


@dataclass(frozen=True)
class Emit:
    item: object


@dataclass(frozen=True)
class Feed:
    monitor: GuardMonitor
    delta: str


@dataclass(frozen=True)
class Finish:
    monitor: GuardMonitor


@dataclass(frozen=True)
class Check:
    candidate: Candidate


@dataclass(frozen=True)
class Verdict:
    output: str
    result: ScanResult


Op = _Pull | _Close | Emit | Feed | Finish | Check | Verdict


class StreamCore:
    """The decision logic of one guarded stream.

    Chunks are held while any output in the stream has fewer than ``holdback`` characters
    cleared by its monitor, and released in order as soon as all have (or the stream ends),
    so a refusal at the start of a stream is decided before the consumer sees it. On a
    refusal the guard's ``stream_verdict`` decides: ``flag`` lets the stream go on, ``raise``
    propagates :class:`~norefusal.RefusalDetected` (the driver closes the upstream response),
    ``replace`` closes the upstream response, drops the held chunks and emits one synthetic
    final chunk holding the replacement.

    Each output (a choice when ``n > 1``, an output item in the Responses API) has its own
    monitor and is decided at most once: its monitor's checkpoint scans, its provider signal
    (``delta.refusal``, ``finish_reason == "content_filter"``, a Responses API refusal delta or
    content-filter incompletion) and one final scan of its whole text, skipped once decided.
    A replacement ends the whole stream: other choices stop where they were.

    Attributes:
        verdict: the refusal result that decided, or ``None``.
        action: what the policy did with it (``"flag"``, ``"replace"``, ...), or ``None``.
        results: the final result of each output, by choice or output index.
    """

    def __init__(
        self,
        guard: Guard,
        prompt: str,
        endpoint: Endpoint,
        *,
        holdback: int,
        structured: bool = False,
    ) -> None:
        self.guard = guard
        self.prompt = prompt
        self._endpoint = endpoint
        self._holdback = holdback
        self._structured = structured
        self._held: list[object] = []
        self._monitors: dict[int, GuardMonitor] = {}
        self._decided: set[int] = set()
        self._signalled: set[int] = set()
        self._last: object = None
        self._snapshot: Response | None = None
        self._delivered: dict[int, ResponseOutputItem] = {}
        self.verdict: ScanResult | None = None
        self.action: str | None = None
        self.results: dict[int, ScanResult] = {}

    # -- the protocol ------------------------------------------------------------------------

    def run(self) -> Generator[Op, Any, None]:
        """Drive one stream; see the module docstring for the protocol."""
        while True:
            item = yield PULL
            if item is END:
                break
            if isinstance(item, Failed):
                # The client's own error passes through untouched, after every chunk received
                # before it: nothing is lost, and no verdict is invented for a broken stream.
                yield from self._release(everything=True)
                raise item.error
            self._observe(item)
            self._held.append(item)
            for key, delta in _texts(item):
                if key in self._decided:
                    continue
                monitor = self._monitors.get(key)
                if monitor is None:
                    monitor = self._monitors[key] = self.guard.monitor(self.prompt)
                result: ScanResult | None = yield Feed(monitor, delta)
                if result is not None and (yield from self._decide(key, result)):
                    return
            for key, candidate in self._signals(item):
                if key in self._decided or key in self._signalled:
                    continue
                self._signalled.add(key)
                checked: ScanResult = yield Check(candidate)
                if checked.is_refusal and (yield from self._decide(key, checked)):
                    return
            yield from self._release()
        for key, monitor in list(self._monitors.items()):
            if key in self._decided:
                continue
            final: ScanResult = yield Finish(monitor)
            self.results[key] = final
            if final.is_refusal and (yield from self._decide(key, final)):
                return
        yield from self._release(everything=True)

    def _decide(self, key: int, result: ScanResult) -> Generator[Op, Any, bool]:
        """Apply the policy to a refusal of output ``key``; true when the stream is over."""
        self._decided.add(key)
        self.verdict = self.results[key] = result
        self.action = "raise"  # what happened, should the verdict raise
        action: StreamAction = yield Verdict(self._text(key), result)
        self.action = action.kind
        if action.kind != "replace":
            return False
        yield CLOSE
        kept = [i for i in self._held if getattr(i, "type", None) in _LIFECYCLE]
        self._held.clear()
        for item in kept:
            self._deliver(item)
            yield Emit(item)
        yield Emit(self._synthetic(key, action.replacement or ""))
        return True

    def _release(self, *, everything: bool = False) -> Generator[Op, Any, None]:
        if not everything and any(
            monitor.cleared < self._holdback
            for key, monitor in self._monitors.items()
            if key not in self._decided
        ):
            return
        held, self._held = self._held, []
        for item in held:
            self._deliver(item)
            yield Emit(item)

    # -- reading chunks ----------------------------------------------------------------------

    def _observe(self, item: object) -> None:
        self._last = item
        response = getattr(item, "response", None)
        if isinstance(response, Response):
            self._snapshot = response

    def _signals(self, item: object) -> list[tuple[int, Candidate]]:
        found: list[tuple[int, Candidate]] = []
        if isinstance(item, ChatCompletionChunk):
            for index, choice in _choices(item):
                refusal = str_field(getattr(choice, "delta", None), "refusal")
                if refusal:
                    candidate = Candidate(refusal, refusal=refusal, detail="delta.refusal")
                    found.append((index, candidate))
                elif str_field(choice, "finish_reason") == "content_filter":
                    candidate = Candidate(
                        self._text(index),
                        refusal="content_filter",
                        detail="finish_reason=content_filter",
                    )
                    found.append((index, candidate))
        elif isinstance(item, ResponseRefusalDeltaEvent):
            delta = str_field(item, "delta")
            if delta and isinstance(item.output_index, int):
                candidate = Candidate(delta, refusal=delta, detail="refusal content item")
                found.append((item.output_index, candidate))
        elif isinstance(item, ResponseIncompleteEvent):
            details = getattr(getattr(item, "response", None), "incomplete_details", None)
            if str_field(details, "reason") == "content_filter":
                candidate = Candidate(
                    self._all_text(),
                    refusal="content_filter",
                    detail="incomplete_details.reason=content_filter",
                )
                found.append((_WHOLE, candidate))
        return found

    def _text(self, key: int) -> str:
        monitor = self._monitors.get(key)
        if monitor is None:
            return self._all_text() if key == _WHOLE else ""
        return monitor.text

    def _all_text(self) -> str:
        return "".join(m.text for _, m in sorted(self._monitors.items()))

    # -- building chunks ---------------------------------------------------------------------

    def _deliver(self, item: object) -> None:
        """Remember the Responses API output items the consumer has been told about."""
        if isinstance(
            item, (ResponseOutputItemAddedEvent, ResponseOutputItemDoneEvent)
        ) and isinstance(item.output_index, int):  # unvalidated: may be any JSON value
            self._delivered[item.output_index] = item.item

    def _synthetic(self, key: int, replacement: str) -> object:
        if self._endpoint is Endpoint.CHAT:
            template = self._last if isinstance(self._last, ChatCompletionChunk) else None
            delta = (
                ChoiceDelta(role="assistant", refusal=replacement)
                if self._structured
                else ChoiceDelta(role="assistant", content=replacement)
            )
            created = getattr(template, "created", None)
            return ChatCompletionChunk(
                id=str_field(template, "id") or "chatcmpl-norefusal",
                created=created if isinstance(created, int) else int(time.time()),
                model=str_field(template, "model") or "",
                object="chat.completion.chunk",
                choices=[Choice(index=max(key, 0), delta=delta, finish_reason="stop")],
            )
        return self._synthetic_completed(replacement)

    def _synthetic_completed(self, replacement: str) -> ResponseCompletedEvent:
        if self._snapshot is not None:
            base = self._snapshot.model_copy()
        else:
            base = Response.model_construct(
                id="resp_norefusal", object="response", output=[], created_at=time.time(), model=""
            )
        base.output = [self._delivered[i] for i in sorted(self._delivered)]
        base.status = "completed"
        base.incomplete_details = None
        final = replace_response(base, [0], replacement, structured=self._structured)
        assert isinstance(final, Response)
        number = getattr(self._last, "sequence_number", None)
        return ResponseCompletedEvent(
            type="response.completed",
            sequence_number=number + 1 if isinstance(number, int) else 0,
            response=final,
        )


def _choices(chunk: ChatCompletionChunk) -> list[tuple[int, object]]:
    """The choices of a chunk with their indices; malformed ones (no int index) are skipped."""
    found: list[tuple[int, object]] = []
    for choice in list_field(chunk, "choices"):
        index = getattr(choice, "index", None)
        if isinstance(index, int) and index >= 0:
            found.append((index, choice))
    return found


def _texts(item: object) -> list[tuple[int, str]]:
    """The text deltas in a chunk or event, by choice or output index."""
    if isinstance(item, ChatCompletionChunk):
        found = [(i, str_field(getattr(c, "delta", None), "content")) for i, c in _choices(item)]
        return [(i, text) for i, text in found if text]
    if isinstance(item, ResponseTextDeltaEvent):
        delta = str_field(item, "delta")
        if delta and isinstance(item.output_index, int):
            return [(item.output_index, delta)]
    return []


# -- drivers ----------------------------------------------------------------------------------


class GuardedStream(Stream[_T], Generic[_T]):
    """A :class:`openai.Stream` whose chunks pass a refusal guard on their way to the consumer.

    Iterates exactly like the stream it wraps (same chunk objects, same order) except that
    chunks may be held back until cleared, and a refusal ends it as the policy says.
    ``close()`` closes the upstream response; a stream closed early is not scanned again.

    Attributes:
        verdict: the refusal result that decided, or ``None`` (so far).
        action: what the policy did (``"flag"``, ``"replace"``, ``"raise"``), or ``None``.
    """

    def __init__(self, upstream: Stream[_T], core: StreamCore) -> None:
        # Not Stream.__init__: the upstream stream already owns the response and its decoder.
        self.response = upstream.response
        self._cast_to = upstream._cast_to
        self._client = upstream._client
        self._options = upstream._options
        self._upstream = upstream
        self._core = core
        self._iterator = self.__stream__()

    @property
    def verdict(self) -> ScanResult | None:
        return self._core.verdict

    @property
    def action(self) -> str | None:
        return self._core.action

    def __stream__(self) -> Iterator[_T]:
        ops = self._core.run()
        guard, prompt = self._core.guard, self._core.prompt
        finished = False
        value: object = None
        try:
            while True:
                try:
                    op = ops.send(value)
                except StopIteration:
                    finished = True
                    return
                value = None
                if isinstance(op, _Pull):
                    try:
                        value = next(self._upstream)
                    except StopIteration:
                        value = END
                    except Exception as exc:
                        value = Failed(exc)
                elif isinstance(op, Emit):
                    yield op.item  # type: ignore[misc]
                elif isinstance(op, Feed):
                    value = op.monitor.feed(op.delta)
                elif isinstance(op, Finish):
                    value = op.monitor.finish()
                elif isinstance(op, Check):
                    value = guard.check(prompt, op.candidate)
                elif isinstance(op, Verdict):
                    value = guard.stream_verdict(prompt, op.output, op.result)
                else:
                    self.response.close()
        finally:
            ops.close()
            if not finished:
                self.response.close()

    def close(self) -> None:
        """Close the upstream response and stop the stream (no final scan)."""
        self.response.close()
        self._iterator.close()  # type: ignore[attr-defined]


class GuardedAsyncStream(AsyncStream[_T], Generic[_T]):
    """The async twin of :class:`GuardedStream`: scans never block the event loop."""

    def __init__(self, upstream: AsyncStream[_T], core: StreamCore) -> None:
        self.response = upstream.response
        self._cast_to = upstream._cast_to
        self._client = upstream._client
        self._options = upstream._options
        self._upstream = upstream
        self._core = core
        self._iterator = self.__stream__()

    @property
    def verdict(self) -> ScanResult | None:
        return self._core.verdict

    @property
    def action(self) -> str | None:
        return self._core.action

    async def __stream__(self) -> AsyncIterator[_T]:
        ops = self._core.run()
        guard, prompt = self._core.guard, self._core.prompt
        finished = False
        value: object = None
        try:
            while True:
                try:
                    op = ops.send(value)
                except StopIteration:
                    finished = True
                    return
                value = None
                if isinstance(op, _Pull):
                    try:
                        value = await self._upstream.__anext__()
                    except StopAsyncIteration:
                        value = END
                    except Exception as exc:
                        value = Failed(exc)
                elif isinstance(op, Emit):
                    yield op.item  # type: ignore[misc]
                elif isinstance(op, Feed):
                    value = await op.monitor.afeed(op.delta)
                elif isinstance(op, Finish):
                    value = await op.monitor.afinish()
                elif isinstance(op, Check):
                    value = await guard.acheck(prompt, op.candidate)
                elif isinstance(op, Verdict):
                    value = await guard.astream_verdict(prompt, op.output, op.result)
                else:
                    await self.response.aclose()
        finally:
            ops.close()
            if not finished:
                await self.response.aclose()

    async def close(self) -> None:
        """Close the upstream response and stop the stream (no final scan)."""
        await self.response.aclose()
        await self._iterator.aclose()  # type: ignore[attr-defined]
