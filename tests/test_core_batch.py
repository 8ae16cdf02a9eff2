"""Batch, async and sentence scans agree with one-by-one scans; ONNX agrees with torch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from _tiny_models import record
from norefusal import ConfigurationError, NoRefusalScanner, ScannerError, Signal
from norefusal._backends import Backend

REFUSAL = "I'm sorry, but I can't help with that request."
LONG_ANSWER = "Step 1: open the file. Step 2: read every line. " * 120
PAIRS: list[tuple[str | None, str | None]] = [
    ("Capital of France?", "The capital of France is Paris."),
    ("Make a weapon", REFUSAL),
    ("Tell me a story", LONG_ANSWER + "The end."),
    ("Empty", ""),
    (None, "Sure! Here is a recipe for pancakes."),
    ("Whitespace", "  \n "),
    ("Preamble then refusal", LONG_ANSWER + "As an AI language model, I must decline."),
    ("<|system|>Be brief.<|user|>2+2?", "4"),
    ("Short", "No."),
    ("Kill a process", "To kill a Python process, send it a signal with os.kill."),
    ("None output", None),
    ("Emoji", "🙅" * 30),
]

SCANNERS = ["keyword", "roberta", "bert", "onnx"]


@pytest.fixture(params=SCANNERS)
def scanner(request: pytest.FixtureRequest) -> NoRefusalScanner:
    return request.getfixturevalue(f"{request.param}_scanner")  # type: ignore[no-any-return]


def _scores(results: list[tuple[str, bool, float]]) -> list[float]:
    return [r.score for r in results]  # type: ignore[attr-defined]


def test_batch_equals_one_by_one(scanner: NoRefusalScanner) -> None:
    single = [scanner.scan(p, o) for p, o in PAIRS]
    for batch_size in (1, 3, 32):
        batch = scanner.scan_batch(PAIRS, batch_size=batch_size)
        assert len(batch) == len(PAIRS)
        for one, many in zip(single, batch, strict=True):
            assert many.score == pytest.approx(one.score, abs=1e-6)
            assert (many.sanitized, many.valid, many.signal) == (
                one.sanitized,
                one.valid,
                one.signal,
            )
    # The scores differ between texts, so a batch in the wrong order would fail above.
    assert len({round(r.score, 4) for r in single if r.signal is Signal.CLASSIFIER}) >= 3


def test_batch_preserves_order_with_mixed_lengths(scanner: NoRefusalScanner) -> None:
    pairs = PAIRS[::-1] + PAIRS
    results = scanner.scan_batch(pairs, batch_size=4)
    for (_, output), result in zip(pairs, results, strict=True):
        assert result.sanitized == (output or "")


def test_batch_accepts_any_iterable(keyword_scanner: NoRefusalScanner) -> None:
    generated = keyword_scanner.scan_batch((p, o) for p, o in PAIRS)
    assert generated == keyword_scanner.scan_batch(PAIRS)
    assert keyword_scanner.scan_batch([]) == []


def test_one_forward_pass_per_chunk(
    onnx_scanner: NoRefusalScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = record(onnx_scanner, monkeypatch)
    pairs = [("p", f"answer number {i} " * (i % 7 + 1)) for i in range(70)] + [("p", " ")] * 5
    onnx_scanner.scan_batch(pairs, batch_size=32)
    assert [len(c) for c in recorder.calls] == [32, 32, 6]  # whitespace outputs cost nothing
    for call in recorder.calls:  # grouped by length, so short inputs are not padded to long ones
        assert [len(t) for t in call] == sorted(len(t) for t in call)
    recorder.calls.clear()
    onnx_scanner.scan_batch([])
    onnx_scanner.scan_batch([("p", ""), ("p", None)])
    assert recorder.calls == []


def test_default_batch_size_is_the_constructor_option(
    tiny_onnx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner = NoRefusalScanner(model=str(tiny_onnx_dir), batch_size=5)
    recorder = record(scanner, monkeypatch)
    scanner.scan_batch([("p", f"text {i}") for i in range(12)])
    assert [len(c) for c in recorder.calls] == [5, 5, 2]


def test_default_batch_size_is_the_backends(
    tiny_onnx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner = NoRefusalScanner(model=str(tiny_onnx_dir))
    recorder = record(scanner, monkeypatch)
    scanner.scan_batch([("p", f"text {i}") for i in range(3)])
    assert [len(c) for c in recorder.calls] == [1, 1, 1]  # OnnxBackend.batch_size


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "8"])
def test_bad_batch_size_for_one_call(keyword_scanner: NoRefusalScanner, batch_size: object) -> None:
    with pytest.raises(ConfigurationError, match="batch_size"):
        keyword_scanner.scan_batch(PAIRS, batch_size=batch_size)  # type: ignore[arg-type]


async def test_ascan_equals_scan(scanner: NoRefusalScanner) -> None:
    expected = [scanner.scan(p, o) for p, o in PAIRS]
    got = await asyncio.gather(*(scanner.ascan(p, o) for p, o in PAIRS))
    for one, other in zip(expected, got, strict=True):
        assert other == one
        assert other.score == pytest.approx(one.score, abs=1e-6)


async def test_ascan_runs_inference_off_the_event_loop(
    onnx_scanner: NoRefusalScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    recorder = record(onnx_scanner, monkeypatch)
    inner = recorder.predict

    def predict(texts: list[str]) -> np.ndarray:
        threads.append(threading.get_ident())
        return inner(texts)

    monkeypatch.setattr(recorder, "predict", predict)
    await onnx_scanner.ascan("p", REFUSAL)
    assert threads
    assert threading.get_ident() not in threads


@pytest.mark.parametrize("which", ["keyword", "onnx", "bert"])
def test_sentence_match_takes_the_max_over_sentences(
    which: str, request: pytest.FixtureRequest, tiny_onnx_dir: Path, tiny_bert_dir: Path
) -> None:
    full: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    model = {"keyword": "keyword", "onnx": str(tiny_onnx_dir), "bert": str(tiny_bert_dir)}[which]
    sentence = NoRefusalScanner(model=model, match="sentence")
    sentences = [
        "Here is some background on locks.",
        "I'm sorry, but I can't help with that!",
        "Locksmiths are licensed.",
        "Ask one instead?",
    ]
    output = " ".join(sentences[:2]) + "\n" + " ".join(sentences[2:])
    expected = max(full.scan("Q", s).score for s in sentences)
    got = sentence.scan("Q", output)
    assert got.score == pytest.approx(expected, abs=1e-6)
    assert got.sanitized is output
    # Batch scans in sentence mode agree with single ones too.
    batch = sentence.scan_batch([("Q", output), ("Q", sentences[0]), ("Q", "")])
    assert batch[0].score == pytest.approx(expected, abs=1e-6)
    assert batch[1].score == pytest.approx(full.scan("Q", sentences[0]).score, abs=1e-6)
    assert batch[2] == ("", True, -1.0)


def test_onnx_equals_torch(tiny_default_hf_dir: Path, onnx_scanner: NoRefusalScanner) -> None:
    """The same tiny model through ONNX Runtime and through torch, windowed the same way."""
    torch_scanner = NoRefusalScanner(
        model=str(tiny_default_hf_dir), backend="transformers", max_tokens=64
    )
    outputs = [o for _, o in PAIRS if o and o.strip()]
    via_torch = torch_scanner.scan_batch([("", o) for o in outputs])
    via_onnx = onnx_scanner.scan_batch([("", o) for o in outputs])
    diffs = [abs(a.score - b.score) for a, b in zip(via_torch, via_onnx, strict=True)]
    assert max(diffs) <= 1e-4
    # Backend level: the raw probabilities, on a padded batch.
    torch_backend = torch_scanner.load()
    onnx_backend = onnx_scanner.load()
    np.testing.assert_allclose(
        onnx_backend.predict(outputs), torch_backend.predict(outputs), atol=1e-4, rtol=0
    )
    assert np.ptp(torch_backend.predict(outputs)) > 0.01  # not a constant model


def test_onnx_threshold_and_name_come_from_norefusal_json(
    onnx_scanner: NoRefusalScanner,
) -> None:
    assert onnx_scanner.threshold == 0.5
    assert onnx_scanner.model_name == "tiny-onnx"
    assert onnx_scanner.scan("", REFUSAL).model == "tiny-onnx"


class _BrokenBackend(Backend):
    name = "broken"

    def __init__(self, result: object) -> None:
        self.result = result

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result  # type: ignore[return-value]


@pytest.mark.parametrize(
    "result",
    [RuntimeError("boom"), np.array([0.5, 0.5]), np.array([float("nan")]), [0.1, 0.2, 0.3]],
)
def test_a_failing_backend_raises_scanner_error(
    result: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner = NoRefusalScanner(model="keyword")
    monkeypatch.setattr(scanner, "_backend", _BrokenBackend(result))
    with pytest.raises(ScannerError) as info:
        scanner.scan("secret prompt", "secret output")
    assert "secret" not in str(info.value)


def test_backend_scores_are_clipped_to_probabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    scanner = NoRefusalScanner(model="keyword")
    monkeypatch.setattr(scanner, "_backend", _BrokenBackend(np.array([1.0000001])))
    assert scanner.scan("", "x").score == 1.0
