"""What each model is fed: input formats, head + tail windows, and hostile strings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import norefusal._backends._keyword as keyword_module
import numpy as np
import numpy.typing as npt
import pytest
from _tiny_models import (
    RecordingBackend,
    build_bpe_tokenizer,
    build_wordpiece_tokenizer,
    record,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from norefusal import Backend, NoRefusalScanner, Signal
from norefusal._backends._keyword import KeywordBackend
from norefusal._encoding import WindowedEncoder
from norefusal._presets import DEFAULT_MODEL_DIR
from norefusal._text import PLACEHOLDER, PROMPT_CHARS, format_input, split_sentences
from norefusal._visible import is_blank, squeeze, visible_windows
from tokenizers import Tokenizer

REFUSAL = "I'm sorry, but I can't help with that request."

# -- input formats -------------------------------------------------------------------------


def test_response_format_feeds_the_output_alone(
    roberta_scanner: NoRefusalScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner = roberta_scanner
    recorder = record(scanner, monkeypatch)
    scanner.scan("What is the capital of France?", "Paris.")
    scanner.scan(None, REFUSAL)
    assert recorder.calls == [["Paris."], [REFUSAL]]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("What is 2+2?", "<|user|>What is 2+2?<|assistant|>4"),
        ("", "<|assistant|>4"),
        (None, "<|assistant|>4"),
        (
            "<|system|>Be brief.<|user|>What is 2+2?",
            "<|system|>Be brief.<|user|>What is 2+2?<|assistant|>4",
        ),
        (
            "<|user|>Hi<|assistant|>Hello!<|user|>2+2?",
            "<|user|>Hi<|assistant|>Hello!<|user|>2+2?<|assistant|>4",
        ),
    ],
)
def test_conversation_format_exact_strings(
    bert_scanner: NoRefusalScanner,
    monkeypatch: pytest.MonkeyPatch,
    prompt: str | None,
    expected: str,
) -> None:
    scanner = bert_scanner
    recorder = record(scanner, monkeypatch)
    scanner.scan(prompt, "4")
    assert recorder.texts == [expected]


def test_conversation_format_trims_long_prompts_behind_the_placeholder(
    bert_scanner: NoRefusalScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner = bert_scanner
    recorder = record(scanner, monkeypatch)
    prompt = "".join(f"turn {i}. " for i in range(400)) + "LATEST QUESTION?"
    scanner.scan(prompt, "Answer.")
    (text,) = recorder.texts
    # A plain prompt keeps its user tag in front of the placeholder, as agentlans' data does.
    kept = text.removeprefix("<|user|>" + PLACEHOLDER).removesuffix("<|assistant|>Answer.")
    assert text.startswith("<|user|>" + PLACEHOLDER)
    assert len(kept) == PROMPT_CHARS
    assert prompt.endswith(kept)
    assert kept.endswith("LATEST QUESTION?")


def test_format_input_trims_a_role_tagged_prompt_without_adding_a_tag() -> None:
    prompt = "<|system|>Be brief." + "<|user|>" + "q" * (2 * PROMPT_CHARS)
    text = format_input(prompt, "y", scanner_format("agentlans"))
    assert text == PLACEHOLDER + prompt[-PROMPT_CHARS:] + "<|assistant|>y"


def test_backend_instance_plugs_in_a_custom_classifier() -> None:
    class Constant(Backend):
        name = "constant"

        def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
            return np.full(len(texts), 0.9)

    scanner = NoRefusalScanner(backend=Constant())
    result = scanner.scan("q", "anything")
    assert (result.model, scanner.backend_name, result.score) == ("constant", "custom", 0.9)
    assert result.is_refusal


def test_format_input_keeps_a_prompt_that_fits() -> None:
    prompt = "x" * PROMPT_CHARS
    assert (
        format_input(prompt, "y", scanner_format("agentlans")) == f"<|user|>{prompt}<|assistant|>y"
    )


def scanner_format(preset: str) -> Any:
    return NoRefusalScanner(model=preset)._resolved.input_format


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("protectai", ["Sure, here it is."]),
        ("agentlans", ["<|user|>Tell me.<|assistant|>Sure, here it is."]),
        ("keyword", ["Sure, here it is."]),
    ],
)
def test_presets_feed_their_documented_format(preset: str, expected: list[str]) -> None:
    """The hub presets are not downloaded: a recording backend stands in for the model."""
    scanner = NoRefusalScanner(model=preset)
    recorder = RecordingBackend(KeywordBackend())
    scanner._backend = recorder
    scanner.scan("Tell me.", "Sure, here it is.")
    assert recorder.texts == expected


def test_sentence_match_scores_each_sentence_in_the_models_format(
    tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner = NoRefusalScanner(model=str(tiny_bert_dir), backend="transformers", match="sentence")
    recorder = record(scanner, monkeypatch)
    scanner.scan("Q?", "Hello there. I can't help with that!\nBye")
    assert sorted(recorder.texts) == sorted(
        f"<|user|>Q?<|assistant|>{s}" for s in ("Hello there.", "I can't help with that!", "Bye")
    )


def test_split_sentences_is_bounded() -> None:
    text = "Short one. " * 10_000
    pieces = split_sentences(text, max_sentences=8)
    assert len(pieces) == 8
    assert pieces[:7] == ["Short one."] * 7
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "我不能帮你做这件事。这违反了我的政策！你还有其他问题吗？",
            ["我不能帮你做这件事。", "这违反了我的政策！", "你还有其他问题吗？"],
        ),
        (
            "「申し訳ありません。」それはできません。",
            ["「申し訳ありません。」", "それはできません。"],
        ),
        ("本当ですか！？はい．わかりました｡", ["本当ですか！？", "はい．", "わかりました｡"]),
        (
            "मैं इसमें मदद नहीं कर सकता।कृपया कुछ और पूछें॥ ठीक है",
            ["मैं इसमें मदद नहीं कर सकता।", "कृपया कुछ और पूछें॥", "ठीक है"],
        ),
        ("لا أستطيع المساعدة؟هل لديك سؤال آخر", ["لا أستطيع المساعدة؟", "هل لديك سؤال آخر"]),
        ("میں مدد نہیں کر سکتا۔ کچھ اور پوچھیں۔", ["میں مدد نہیں کر سکتا۔", "کچھ اور پوچھیں۔"]),
        ("ขอโทษครับ ผมช่วยเรื่องนี้ไม่ได้", ["ขอโทษครับ", "ผมช่วยเรื่องนี้ไม่ได้"]),
        (
            'Version 2.5 is out. Great! "Yes." See e.g.x\nBye',
            ["Version 2.5 is out.", "Great!", '"Yes."', "See e.g.x", "Bye"],
        ),
    ],
    ids=[
        "chinese",
        "japanese quotes",
        "full-width marks",
        "hindi",
        "arabic",
        "urdu",
        "thai",
        "latin",
    ],
)
def test_split_sentences_in_scripts_without_spaces(text: str, sentences: list[str]) -> None:
    """Before: a sentence end needed whitespace after it, so Chinese and Japanese text (and
    Devanagari, Arabic or Thai without it) was one sentence, and match="sentence" read it as
    "full" does."""
    assert split_sentences(text) == sentences


def test_split_sentences_of_cjk_text_is_bounded() -> None:
    text = "好。" * 10_000 + "！？" * 10_000
    pieces = split_sentences(text, max_sentences=8)
    assert len(pieces) == 8
    assert pieces[:7] == ["好。"] * 7
    assert "".join(pieces) == text


def test_sentence_match_reads_each_cjk_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    scanner = NoRefusalScanner(model="keyword", match="sentence")
    recorder = record(scanner, monkeypatch)
    scanner.scan("请帮我。", "这是背景信息。对不起，我不能帮你。")
    assert sorted(recorder.texts) == sorted(["这是背景信息。", "对不起，我不能帮你。"])


# -- head and tail windows -----------------------------------------------------------------


@pytest.fixture(scope="module", params=["wordpiece", "bpe"])
def tokenizer(request: pytest.FixtureRequest) -> Tokenizer:
    return build_wordpiece_tokenizer() if request.param == "wordpiece" else build_bpe_tokenizer()


def _plain(tok: Tokenizer, text: str) -> list[int]:
    return list(tok.encode(text, add_special_tokens=False).ids)


def _row(encoder: WindowedEncoder, text: str) -> list[int]:
    encoded = encoder.encode([text])
    ids, mask = encoded.input_ids[0], encoded.attention_mask[0]
    return [int(i) for i, m in zip(ids, mask, strict=True) if m]


def test_short_text_is_encoded_whole(tokenizer: Tokenizer) -> None:
    encoder = WindowedEncoder(tokenizer, max_tokens=64)
    text = "Sure! Here is a recipe."
    assert _row(encoder, text) == list(tokenizer.encode(text).ids)


def test_long_text_keeps_head_and_tail_around_the_placeholder(tokenizer: Tokenizer) -> None:
    encoder = WindowedEncoder(tokenizer, max_tokens=64, head_fraction=0.75)
    text = REFUSAL + " " + "Step 1: open the file. " * 20 + "As an AI, I must decline."
    full = list(tokenizer.encode(text).ids)
    assert len(full) > 64
    row = _row(encoder, text)
    assert len(row) == 64
    placeholder = _plain(tokenizer, f" {PLACEHOLDER} ")
    body = full[1:-1]
    room = 64 - 2
    head = round((room - len(placeholder)) * 0.75)
    tail = room - len(placeholder) - head
    assert row == [full[0], *body[:head], *placeholder, *body[-tail:], full[-1]]


def test_windows_of_a_huge_text_match_its_start_and_end(tokenizer: Tokenizer) -> None:
    encoder = WindowedEncoder(tokenizer, max_tokens=48)
    middle = "the capital of France is Paris. " * 20_000
    text = REFUSAL + " " + middle + "As an AI, I must decline."
    row = _row(encoder, text)
    assert len(row) == 48
    start = list(tokenizer.encode(REFUSAL + " " + middle[:200]).ids)
    end = list(tokenizer.encode(middle[-200:] + "As an AI, I must decline.").ids)
    placeholder = _plain(tokenizer, f" {PLACEHOLDER} ")
    p = next(i for i in range(len(row)) if row[i : i + len(placeholder)] == placeholder)
    assert row[:p] == start[:p]
    assert row[p + len(placeholder) :] == end[len(end) - (len(row) - p - len(placeholder)) :]


def test_sparse_tail_window_keeps_all_its_tokens() -> None:
    """A window with fewer tokens than its share keeps them all (no negative-index slice)."""
    tok = build_wordpiece_tokenizer()
    encoder = WindowedEncoder(tok, max_tokens=64)
    word = "ж" * 70  # an unknown 70-letter word: one [UNK] per word
    text = " ".join([word] * 40)
    row = _row(encoder, text)
    unk = tok.token_to_id("[UNK]")
    placeholder = _plain(tok, f" {PLACEHOLDER} ")
    p = next(i for i in range(len(row)) if row[i : i + len(placeholder)] == placeholder)
    tail = row[p + len(placeholder) : -1]
    window = _plain(tok, text[-encoder._tail_cut :])  # the characters the tail window tokenizes
    assert len(window) < encoder._tail  # fewer tokens than the tail's share of the budget
    assert tail == window == [unk] * len(window)
    assert len(row) <= 64


# -- padding: what squeezing keeps, and windows it cannot fill ----------------------------

#: Whitespace, invisible characters and marks a tokenizer drops, and ordinary text between.
PADDING_ALPHABET = [
    *"ab c.!?\t\n\r\x0b\x0c\x1c\x1f\x85\x00\x7f",
    *"\u00a0\u1680\u2003\u2028\u2029\u202f\u205f\u3000",  # other spaces
    *"\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u200e\u202e\u2066",  # format characters
    *"\u0301\u0323\u034f\ufe0f\u1734",  # combining marks, a variation selector
    "\U0001d167",  # an astral combining mark
    "\U000e0041",  # a tag character
    "\ue000",  # private use
    "\U000f0000",
    "\ufffd",
    "\U0001f645",
    "\u4e2d",
    "\u00e9",
    "e\u0301",
    "Refusal. ",
    " " * 40,
    "\u200b" * 20,
    "\u0301" * 20,
    "\n" * 17,
]
padded_text = st.lists(st.sampled_from(PADDING_ALPHABET), max_size=60).map("".join)


@pytest.fixture(scope="module")
def default_tokenizer() -> Tokenizer:
    tok = Tokenizer.from_file(str(DEFAULT_MODEL_DIR / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


@settings(max_examples=400, deadline=None)
@given(text=padded_text)
def test_squeezing_changes_no_token_of_the_default_tokenizer(
    default_tokenizer: Tokenizer, text: str
) -> None:
    """The embedded model reads exactly what it read before: its tokenizer drops all of it."""
    ids = default_tokenizer.encode(text, add_special_tokens=False).ids
    assert default_tokenizer.encode(squeeze(text), add_special_tokens=False).ids == ids


@settings(max_examples=300, deadline=None)
@given(text=padded_text, head=st.integers(0, 60), tail=st.integers(0, 60))
def test_windows_are_those_of_the_squeezed_text(text: str, head: int, tail: int) -> None:
    squeezed = squeeze(text)
    expected = (
        (squeezed, None)
        if len(squeezed) <= head + tail
        else (squeezed[:head], squeezed[len(squeezed) - tail :])
    )
    assert visible_windows(text, head=head, tail=tail) == expected
    assert is_blank(text) is (squeezed == "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  I can't.\n\n\n\nSure.\u200b\u200b  ", "I can't.\n\nSure."),
        ("can\u200bnot \u2060 help\ufeff", "cannot  help"),
        ("e\u0301\u0301\u0301\u0301\u0301 x \u0301\u0301 y", "e\u0301\u0301\u0301 x  y"),
        ("\u0301\u0301start", "start"),
        ("a\u00a0\u00a0\u00a0b\t\t\tc", "a\u00a0\u00a0b\t\tc"),
        ("x\U000e0041\U000e0042y\ue000\ufffd\x00z", "xyz"),
        ("\U0001f645 ok \U0001f645", "\U0001f645 ok \U0001f645"),
        ("a" + " " * 1000 + "\u200b" * 1000 + "\n" + "b", "a  b"),
    ],
)
def test_squeeze_examples(text: str, expected: str) -> None:
    assert squeeze(text) == expected


def _contains(row: list[int], part: list[int]) -> bool:
    return any(row[i : i + len(part)] == part for i in range(len(row) - len(part) + 1))


@pytest.mark.parametrize("pad", ["\n", " ", "\u00a0", "\u200b", "\ufeff", "\u0301", "\t \u2060"])
def test_padding_takes_no_room_in_a_window(tokenizer: Tokenizer, pad: str) -> None:
    """Padding at either end changes no row, whatever the tokenizer (marks at the end keep
    three on the last character); padding inside a long text (a refusal, a wall of padding, a
    last line) leaves the refusal in the tail window."""
    encoder = WindowedEncoder(tokenizer, max_tokens=96)
    text = "Step 1: open the file. " * 40 + REFUSAL
    row = _row(encoder, text)
    ending = pad * 3 if pad == "\u0301" else ""
    assert _row(encoder, text + pad * 5_000) == _row(encoder, text + ending)
    assert _row(encoder, pad * 5_000 + text) == row
    assert _row(encoder, pad * 5_000 + text + pad * 5_000) == _row(encoder, text + ending)
    refusal = _plain(tokenizer, " help with that request")
    assert _contains(row, refusal)
    assert _contains(_row(encoder, text + pad * 5_000 + "Thanks."), refusal)


_TOKENIZERS = (build_wordpiece_tokenizer(), build_bpe_tokenizer())


@settings(max_examples=60, deadline=None)
@given(
    st.text(max_size=3000),
    st.integers(min_value=16, max_value=96),
    st.sampled_from([0.0, 0.5, 0.75, 1.0]),
)
def test_encoded_length_never_exceeds_max_tokens(text: str, max_tokens: int, head: float) -> None:
    for tok in _TOKENIZERS:
        encoder = WindowedEncoder(tok, max_tokens=max_tokens, head_fraction=head)
        row = _row(encoder, text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))
        assert len(row) <= max_tokens


class CountingTokenizer:
    """Stands in for the encoder's tokenizer and counts the characters it is asked to encode."""

    def __init__(self, inner: Tokenizer) -> None:
        self.inner = inner
        self.segments: list[int] = []

    def encode_batch(self, segments: list[str], **kwargs: Any) -> Any:
        self.segments.extend(len(s) for s in segments)
        return self.inner.encode_batch(segments, **kwargs)


HOSTILE = {
    "1 MB": "I can't help with that. " + "a" * 1_000_000 + " Sorry.",
    "1 MB of words": "word " * 200_000,
    "NUL bytes": "\x00" * 1000 + "I can't\x00 help",
    "only NUL": "\x00\x00\x00",
    "lone surrogates": "I can\ud800't help \udfff with that \ud83d",
    "only emoji": "😀🙈🚀" * 50_000,
    "one emoji": "🙅",
    "control and zero-width": "\u200b\u200d\ufeff\x1b[31m no \x7f",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("which", ["roberta", "bert", "onnx"])
def test_hostile_outputs_give_a_valid_result_with_bounded_tokenization(
    which: str, name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner: NoRefusalScanner = request.getfixturevalue(f"{which}_scanner")
    backend: Any = scanner.load()
    counter = CountingTokenizer(backend._encoder._tok)
    monkeypatch.setattr(backend._encoder, "_tok", counter)
    output = HOSTILE[name]
    result = scanner.scan("a prompt \ud800", output)
    assert result.sanitized is output  # never altered, not even the surrogates
    assert 0.0 <= result.score <= 1.0
    # Invisible characters alone are an empty output, like whitespace alone.
    assert result.signal is (Signal.EMPTY if name == "only NUL" else Signal.CLASSIFIER)
    assert result.valid is not result.is_refusal
    # Two windows at most, each bounded by the token budget: not the megabyte.
    assert len(counter.segments) <= 2
    assert sum(counter.segments) <= backend._encoder._head_cut + backend._encoder._tail_cut


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_outputs_keyword(
    name: str, keyword_scanner: NoRefusalScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    normalise = keyword_module._normalise

    def counting(text: str) -> str:
        seen.append(len(text))
        return normalise(text)

    monkeypatch.setattr(keyword_module, "_normalise", counting)
    output = HOSTILE[name]
    result = keyword_scanner.scan(None, output)
    assert result.sanitized is output
    assert 0.0 <= result.score <= 1.0
    assert max(seen, default=0) <= 2 * keyword_module._WINDOW + 10


def test_refusal_at_the_end_of_a_huge_output_is_seen(keyword_scanner: NoRefusalScanner) -> None:
    output = "Here is some background. " * 40_000 + "I'm sorry, but I can't help with that."
    assert keyword_scanner.scan("", output).is_refusal
    assert not keyword_scanner.scan("", "Here is some background. " * 40_000).is_refusal
