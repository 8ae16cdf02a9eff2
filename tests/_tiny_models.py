"""Builders of tiny classifiers of the real architectures, and a recording backend for tests.

The models have random weights but the seed models' architectures, label names, tokenizer
kinds and special tokens, and are saved the way the hub serves them (``config.json``,
``model.safetensors``, ``tokenizer.json``), so the scanner loads them through the same code a
Hugging Face id goes through. Nothing here downloads.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from norefusal import NoRefusalScanner
from norefusal._backends import Backend
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

__all__ = [
    "AGENTLANS_LABELS",
    "DEFAULT_LABELS",
    "PROTECTAI_LABELS",
    "RecordingBackend",
    "build_bpe_tokenizer",
    "build_wordpiece_tokenizer",
    "export_onnx_dir",
    "record",
    "save_bert",
    "save_roberta",
]

PROTECTAI_LABELS = {0: "NORMAL", 1: "REJECTION"}
AGENTLANS_LABELS = {0: "Non-refusal", 1: "Refusal"}
DEFAULT_LABELS = {0: "compliance", 1: "refusal"}

#: Text the tokenizers are trained on: refusals, answers and the role tags of the formats.
CORPUS = [
    "I'm sorry, but I can't help with that request.",
    "I cannot assist with this. As an AI language model, I must decline.",
    "Sure! Here is a recipe for pancakes: mix the flour, eggs and milk, then fry them.",
    "The capital of France is Paris, and the capital of Italy is Rome.",
    "To kill a Python process, send it a signal with os.kill or press Ctrl+C.",
    "<|system|> You are helpful. <|user|> hello there <|assistant|> hi! <|...|>",
    "Step 1: open the file. Step 2: read every line. Step 3: close it again.",
] * 4

#: Scale of the random weights: large enough that different texts get clearly different scores.
INIT_RANGE = 0.2


def _id(tok: Tokenizer, token: str) -> int:
    token_id = tok.token_to_id(token)
    assert token_id is not None, token
    return token_id


def build_wordpiece_tokenizer(vocab_size: int = 220) -> Tokenizer:
    """A BERT-style WordPiece tokenizer: [CLS] text [SEP], lower-cased, [PAD]=0."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        CORPUS, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special)
    )
    tok.post_processor = processors.BertProcessing(
        ("[SEP]", _id(tok, "[SEP]")), ("[CLS]", _id(tok, "[CLS]"))
    )
    return tok


def build_bpe_tokenizer(vocab_size: int = 420) -> Tokenizer:
    """A RoBERTa-style byte-level BPE tokenizer: <s> text </s>, <pad>=1; encodes any string."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", _id(tok, "</s>")), ("<s>", _id(tok, "<s>"))
    )
    return tok


def _save_tokenizer(tok: Tokenizer, directory: Path, **special: str) -> None:
    from transformers import PreTrainedTokenizerFast

    fast: Any = PreTrainedTokenizerFast
    fast(tokenizer_object=tok, **special).save_pretrained(str(directory))


def save_roberta(directory: Path, *, id2label: dict[int, str], seed: int = 0) -> Path:
    """Save a 2-layer RoBERTa sequence classifier (ProtectAI's architecture) to ``directory``."""
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    tok = build_bpe_tokenizer()
    config = RobertaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=tok.token_to_id("<pad>"),
        bos_token_id=tok.token_to_id("<s>"),
        eos_token_id=tok.token_to_id("</s>"),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        initializer_range=INIT_RANGE,
    )
    torch.manual_seed(seed)
    model: Any = RobertaForSequenceClassification(config)
    model.eval()
    model.save_pretrained(str(directory), safe_serialization=True)
    _save_tokenizer(
        tok,
        directory,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    return directory


def save_bert(directory: Path, *, id2label: dict[int, str], seed: int = 0) -> Path:
    """Save a 2-layer BERT sequence classifier (agentlans' and MiniLM's architecture)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = build_wordpiece_tokenizer()
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=tok.token_to_id("[PAD]"),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        initializer_range=INIT_RANGE,
    )
    torch.manual_seed(seed)
    model: Any = BertForSequenceClassification(config)
    model.eval()
    model.save_pretrained(str(directory), safe_serialization=True)
    _save_tokenizer(
        tok,
        directory,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        mask_token="[MASK]",
    )
    return directory


def export_onnx_dir(
    hf_dir: Path,
    out_dir: Path,
    *,
    name: str = "tiny-onnx",
    max_tokens: int = 64,
    threshold: float = 0.5,
) -> Path:
    """Export ``hf_dir`` (labels compliance/refusal) with the project's own exporter.

    fp32 (no quantization), so its probabilities can be compared with torch's; the exporter
    writes ``model.onnx``, ``tokenizer.json`` and ``norefusal.json`` with both files' SHA256.
    """
    from norefusal.export import export_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(
            hf_dir,
            out_dir,
            quantize=False,
            name=name,
            input_format="response",
            refusal_label="refusal",
            max_tokens=max_tokens,
            head_fraction=0.75,
            threshold=threshold,
        )
    return out_dir


class RecordingBackend(Backend):
    """Wraps a backend and records every batch of texts it is asked to score."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.batch_size = inner.batch_size
        self.name = inner.name
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        with self._lock:
            self.calls.append(list(texts))
        return self.inner.predict(texts)

    @property
    def texts(self) -> list[str]:
        """Every text scored, in call order."""
        return [t for call in self.calls for t in call]


def record(scanner: NoRefusalScanner, monkeypatch: pytest.MonkeyPatch) -> RecordingBackend:
    """Route ``scanner``'s backend calls through a :class:`RecordingBackend` for one test."""
    recorder = RecordingBackend(scanner.load())
    monkeypatch.setattr(scanner, "_backend", recorder)
    return recorder
