"""Transformers backend: any Hugging Face sequence classifier, from the hub or a directory.

Weights load from safetensors only and never with ``trust_remote_code``.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._artifact import check_no_pickle
from .._encoding import WindowedEncoder
from .._errors import MissingDependencyError, ModelLoadError
from .._labels import LabelInfo, resolve_labels
from ._base import Backend, softmax_column

__all__ = ["TransformersBackend", "load_hf_labels"]


def _import_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingDependencyError("The transformers backend", "transformers") from exc
    return torch, transformers


def load_hf_labels(source: str, *, revision: str | None = None) -> LabelInfo:
    """Read ``id2label`` from a model's ``config.json`` (local directory or hub id)."""
    _, transformers = _import_torch()
    where = f"{source}/config.json"
    try:
        config = transformers.AutoConfig.from_pretrained(
            source, revision=revision, trust_remote_code=False
        )
    except Exception as exc:  # hub and parsing errors come in many types
        raise ModelLoadError(f"Could not read {where}: {exc}") from exc
    return resolve_labels(dict(config.id2label), where=where)


class TransformersBackend(Backend):
    """Scores with ``AutoModelForSequenceClassification`` in ``torch.inference_mode``."""

    def __init__(
        self,
        source: str,
        *,
        name: str,
        labels: LabelInfo,
        max_tokens: int,
        revision: str | None = None,
        device: str | None = None,
        head_fraction: float = 0.75,
    ) -> None:
        torch, transformers = _import_torch()
        local = Path(source)
        if local.is_dir():
            for needed in ("config.json", "tokenizer.json"):
                if not (local / needed).is_file():
                    raise ModelLoadError(f"{local / needed} is missing from the model directory.")
            check_no_pickle(local)
            if not any(local.glob("*.safetensors")):
                raise ModelLoadError(f"{local} has no *.safetensors weights.")
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                source, revision=revision, trust_remote_code=False
            )
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                source, revision=revision, trust_remote_code=False, use_safetensors=True
            )
        except Exception as exc:  # hub, file and parsing errors come in many types
            raise ModelLoadError(f"Could not load the model {source!r}: {exc}") from exc
        backend_tokenizer = getattr(tokenizer, "backend_tokenizer", None)
        if backend_tokenizer is None:
            raise ModelLoadError(f"{source} has no fast tokenizer (tokenizer.json).")
        limit = int(getattr(model.config, "max_position_embeddings", max_tokens))
        if model.config.model_type in ("roberta", "xlm-roberta", "camembert"):
            limit -= 2  # RoBERTa's positions start after the padding index
        self._encoder = WindowedEncoder(
            backend_tokenizer, max_tokens=min(max_tokens, limit), head_fraction=head_fraction
        )
        try:
            self._device = torch.device(device or "cpu")
            self._model = model.to(self._device).eval()
        except (RuntimeError, AssertionError) as exc:  # a bad name, or no such device here
            raise ModelLoadError(f"Cannot run {source!r} on device {device!r}: {exc}") from exc
        self._accepts = set(inspect.signature(model.forward).parameters)
        self._labels = labels
        self._torch = torch
        self._lock = threading.Lock() if self._device.type != "cpu" else None
        self.name = name

    @property
    def max_tokens(self) -> int:
        return self._encoder.max_tokens

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        if not texts:
            return np.zeros(0, dtype=np.float64)
        torch = self._torch
        encoded = self._encoder.encode(texts).as_dict()
        feeds = {
            k: torch.from_numpy(v).to(self._device)
            for k, v in encoded.items()
            if k in self._accepts
        }
        with torch.inference_mode():
            if self._lock is None:
                logits = self._model(**feeds).logits
            else:
                with self._lock:  # one accelerator stream at a time
                    logits = self._model(**feeds).logits
        return softmax_column(logits.float().cpu().numpy(), self._labels.refusal_index)
