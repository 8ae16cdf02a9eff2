"""ONNX Runtime backend: the default, with no torch at run time."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .._artifact import ArtifactConfig, verify_files
from .._encoding import WindowedEncoder
from .._errors import ModelLoadError
from ._base import Backend, softmax_column

__all__ = ["OnnxBackend"]


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


class OnnxBackend(Backend):
    """Runs ``model.onnx`` from a directory described by ``norefusal.json``.

    The session runs sequentially on at most four intra-op threads: on the small batches of a
    guardrail, more threads cost more in synchronisation than they save.
    """

    # One input per pass. Dynamic int8 quantization scales activations per batch, so a text
    # batched with others scores slightly differently (up to 0.13 measured) than alone; one at
    # a time, scan_batch gives exactly scan()'s results. It costs nothing: on 2 cores over 256
    # MT-bench answers (128 tokens), 224 texts/s at 1 or 4 inputs per pass, 143 at 32, 79 at 64.
    batch_size = 1

    def __init__(
        self,
        directory: Path,
        config: ArtifactConfig,
        *,
        max_tokens: int | None = None,
        verify: bool = True,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path = directory / "model.onnx"
        tokenizer_path = directory / "tokenizer.json"
        for path in (model_path, tokenizer_path):
            if not path.is_file():
                raise ModelLoadError(f"{path} is missing from the ONNX model directory.")
        if verify:
            verify_files(directory, config.files)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads or _threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Spinning idle threads cost the host application CPU and, measured on 2 cores, doubled
        # p50 latency and tripled p99: a guardrail runs between other work, not in a tight loop.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(model_path), options, providers=["CPUExecutionProvider"]
            )
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # onnxruntime and tokenizers raise their own untyped errors
            raise ModelLoadError(f"Could not load the model in {directory}: {exc}") from exc
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._encoder = WindowedEncoder(
            tokenizer,
            max_tokens=min(max_tokens or config.max_tokens, config.max_tokens),
            head_fraction=config.head_fraction,
        )
        self._config = config
        self.name = config.name

    @property
    def max_tokens(self) -> int:
        return self._encoder.max_tokens

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        if not texts:
            return np.zeros(0, dtype=np.float64)
        feeds = {
            k: v for k, v in self._encoder.encode(texts).as_dict().items() if k in self._inputs
        }
        (logits,) = self._session.run(["logits"], feeds)
        return softmax_column(
            np.asarray(logits), self._config.labels.refusal_index, self._config.temperature
        )
