"""Shared fixtures: tiny local models of the real architectures, built once per session.

Nothing in the test suite may download: the Hugging Face libraries are put in offline mode
before any test imports them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from norefusal import NoRefusalScanner

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _needs_torch() -> None:
    # The tiny models are built with torch (the dev extra has it); the core install does not.
    pytest.importorskip("torch")
    pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RoBERTa classifier with ProtectAI's labels (NORMAL/REJECTION), safetensors."""
    _needs_torch()
    from _tiny_models import PROTECTAI_LABELS, save_roberta

    return save_roberta(tmp_path_factory.mktemp("tiny-roberta"), id2label=PROTECTAI_LABELS)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BERT classifier with agentlans' labels (Non-refusal/Refusal), safetensors."""
    _needs_torch()
    from _tiny_models import AGENTLANS_LABELS, save_bert

    return save_bert(tmp_path_factory.mktemp("tiny-bert"), id2label=AGENTLANS_LABELS, seed=1)


@pytest.fixture(scope="session")
def tiny_default_hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BERT classifier with norefusal's own labels (compliance/refusal): the ONNX source."""
    _needs_torch()
    from _tiny_models import DEFAULT_LABELS, save_bert

    return save_bert(tmp_path_factory.mktemp("tiny-default-hf"), id2label=DEFAULT_LABELS, seed=2)


@pytest.fixture(scope="session")
def tiny_onnx_dir(tmp_path_factory: pytest.TempPathFactory, tiny_default_hf_dir: Path) -> Path:
    """``tiny_default_hf_dir`` exported to ONNX with a ``norefusal.json`` (max_tokens 64)."""
    pytest.importorskip("onnxscript")  # the exporter's extra ("onnx"), part of "dev"
    from _tiny_models import export_onnx_dir

    return export_onnx_dir(tiny_default_hf_dir, tmp_path_factory.mktemp("tiny-onnx"))


@pytest.fixture(scope="session")
def keyword_scanner() -> NoRefusalScanner:
    return NoRefusalScanner(model="keyword")


@pytest.fixture(scope="session")
def roberta_scanner(tiny_roberta_dir: Path) -> NoRefusalScanner:
    """A loaded scanner on the tiny RoBERTa, shared: tests must not change it."""
    scanner = NoRefusalScanner(model=str(tiny_roberta_dir), backend="transformers")
    scanner.load()
    return scanner


@pytest.fixture(scope="session")
def bert_scanner(tiny_bert_dir: Path) -> NoRefusalScanner:
    """A loaded scanner on the tiny agentlans-style BERT, shared: tests must not change it."""
    scanner = NoRefusalScanner(model=str(tiny_bert_dir), backend="transformers")
    scanner.load()
    return scanner


@pytest.fixture(scope="session")
def onnx_scanner(tiny_onnx_dir: Path) -> NoRefusalScanner:
    """A loaded scanner on the tiny ONNX model, shared: tests must not change it."""
    scanner = NoRefusalScanner(model=str(tiny_onnx_dir))
    scanner.load()
    return scanner
