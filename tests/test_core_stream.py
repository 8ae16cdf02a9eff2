"""StreamMonitor: bounded scans, early verdicts, idempotent finish, independent streams."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _tiny_models import record
from norefusal import NoRefusalScanner, ScanResult, StreamMonitor
from norefusal._stream import DEFAULT_CHECKPOINTS

REFUSAL = "I'm sorry, but I can't help with that request. Please ask something else instead."
ANSWER = "Sure! Here is a recipe for pancakes: mix the flour, eggs and milk, then fry them. "


def _deltas(text: str, size: int = 5) -> Iterator[str]:
    return (text[i : i + size] for i in range(0, len(text), size))


def test_long_stream_costs_a_bounded_number_of_scans(
    keyword_scanner: NoRefusalScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = record(keyword_scanner, monkeypatch)
    text = (ANSWER * 300)[:20_000]
    monitor = keyword_scanner.stream("Pancakes?")
    verdicts = [monitor.feed(d) for d in _deltas(text)]
    assert verdicts == [None] * (20_000 // 5)
    assert monitor.scans == len(DEFAULT_CHECKPOINTS)
    final = monitor.finish()
    assert monitor.scans <= len(DEFAULT_CHECKPOINTS) + 1
    assert len(recorder.calls) == monitor.scans  # every scan is one classifier call
    # Checkpoint scans read the text as it was at each checkpoint, not the whole stream again.
    assert [len(c[0]) for c in recorder.calls[:-1]] == list(DEFAULT_CHECKPOINTS)
    assert final.valid
    assert final.sanitized == text
    assert monitor.text == text
    assert monitor.length == monitor.cleared == 20_000


def test_refusal_verdict_at_the_first_checkpoint(keyword_scanner: NoRefusalScanner) -> None:
    monitor = keyword_scanner.stream("How do I pick a lock?")
    returned: list[tuple[int, ScanResult]] = []
    for delta in _deltas(REFUSAL * 3):
        verdict = monitor.feed(delta)
        if verdict is not None:
            returned.append((monitor.length, verdict))
    assert len(returned) == 1  # the verdict comes back once
    length, verdict = returned[0]
    assert length == DEFAULT_CHECKPOINTS[0]
    assert verdict.is_refusal
    assert verdict.sanitized == REFUSAL[:length]
    assert monitor.verdict is verdict
    assert monitor.scans == 1  # no more checkpoint scans after a verdict
    assert monitor.cleared == 0


def test_finish_is_idempotent_and_closes_the_stream(keyword_scanner: NoRefusalScanner) -> None:
    monitor = keyword_scanner.stream()
    for delta in _deltas(REFUSAL):
        monitor.feed(delta)
    scans = monitor.scans
    first = monitor.finish()
    assert monitor.finished
    assert monitor.finish() is first
    assert monitor.scans == scans + 1
    assert first.is_refusal
    assert first == keyword_scanner.scan("", REFUSAL)
    with pytest.raises(RuntimeError, match="finished"):
        monitor.feed("more")


def test_short_stream_is_scanned_once_at_finish(keyword_scanner: NoRefusalScanner) -> None:
    monitor = keyword_scanner.stream("Q")
    assert monitor.feed("No.") is None
    assert monitor.scans == 0
    assert monitor.finish() == keyword_scanner.scan("Q", "No.")
    assert monitor.scans == 1


def test_empty_stream(keyword_scanner: NoRefusalScanner) -> None:
    monitor = keyword_scanner.stream("Q")
    assert monitor.feed("") is None
    assert monitor.feed(None) is None
    assert monitor.finish() == ("", True, -1.0)


def test_bad_delta_and_options(keyword_scanner: NoRefusalScanner) -> None:
    monitor = keyword_scanner.stream("Q")
    with pytest.raises(TypeError, match="delta"):
        monitor.feed(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prompt"):
        keyword_scanner.stream(b"Q")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="checkpoints"):
        keyword_scanner.stream("Q", checkpoints=(0, 10))


def test_custom_checkpoints(keyword_scanner: NoRefusalScanner) -> None:
    monitor = keyword_scanner.stream("Q", checkpoints=(100, 10))
    for delta in _deltas(ANSWER * 3, size=7):
        monitor.feed(delta)
    assert monitor.scans == 2
    assert monitor.cleared == 105  # the first length at or past the last checkpoint


def test_independent_monitors_on_one_scanner(keyword_scanner: NoRefusalScanner) -> None:
    monitors = [keyword_scanner.stream(f"prompt {i}") for i in range(6)]
    texts = [REFUSAL if i % 2 else ANSWER for i in range(6)]
    verdicts: list[ScanResult | None] = [None] * 6
    for step in range(0, max(len(t) for t in texts), 3):  # interleaved, as concurrent streams are
        for i, (monitor, text) in enumerate(zip(monitors, texts, strict=True)):
            verdict = monitor.feed(text[step : step + 3])
            verdicts[i] = verdicts[i] or verdict
    for i, (monitor, text) in enumerate(zip(monitors, texts, strict=True)):
        assert monitor.text == text
        assert (verdicts[i] is not None) == bool(i % 2)
        assert monitor.finish() == keyword_scanner.scan(f"prompt {i}", text)


def test_stream_feeds_the_models_format(
    bert_scanner: NoRefusalScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = record(bert_scanner, monkeypatch)
    monitor = bert_scanner.stream("Pick a lock?")
    assert isinstance(monitor, StreamMonitor)
    for delta in _deltas(ANSWER):
        monitor.feed(delta)
    final = monitor.finish()
    assert recorder.texts[0] == "<|user|>Pick a lock?<|assistant|>" + ANSWER[:40]
    assert recorder.texts[-1] == "<|user|>Pick a lock?<|assistant|>" + ANSWER
    assert final.score == pytest.approx(bert_scanner.scan("Pick a lock?", ANSWER).score, abs=1e-6)


def test_stream_text_is_kept_as_sent(keyword_scanner: NoRefusalScanner) -> None:
    deltas = ["I can\ud800't ", "help \x00", "with that. ", "Sorry \ud83d", "\ude00"]
    monitor = keyword_scanner.stream("Q\udfff")
    for delta in deltas:
        monitor.feed(delta)
    final = monitor.finish()
    assert final.sanitized == "".join(deltas)
    assert final == keyword_scanner.scan("Q", "".join(deltas))
