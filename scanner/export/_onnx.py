"""Export a local Hugging Face sequence classifier to ONNX (optionally int8) with its config.

The output directory is what the ONNX backend loads: ``model.onnx``, ``tokenizer.json`` and
``norefusal.json`` (labels in logit order, refusal label, input format, window, threshold,
temperature, and the SHA256 of each file). Needs the ``onnx`` and ``transformers`` extras.
Only safetensors weights are read, and remote code is never trusted.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import MissingDependencyError

__all__ = ["ExportError", "export_onnx", "file_sha256", "main", "write_config"]

CONFIG_NAME = "norefusal.json"
MODEL_NAME = "model.onnx"
TOKENIZER_NAME = "tokenizer.json"
#: Largest allowed difference between ONNX (fp32) and torch logits.
TOLERANCE = 1e-4
_REFUSAL_NAMES = ("refusal", "rejection", "refuse", "refused", "reject")


class ExportError(RuntimeError):
    """The model could not be exported faithfully."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA256 of a file, read in chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_config(out_dir: str | Path, **fields: Any) -> dict[str, Any]:
    """Write (or update) ``norefusal.json`` in ``out_dir``, recomputing the files' SHA256."""
    out_dir = Path(out_dir)
    path = out_dir / CONFIG_NAME
    config: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    config.update(fields)
    config["files"] = {n: file_sha256(out_dir / n) for n in (MODEL_NAME, TOKENIZER_NAME)}
    path.write_text(json.dumps(config, indent=2) + "\n")
    return config


def _refusal_label(labels: list[str], given: str | None) -> str:
    if given is not None:
        if given not in labels:
            raise ExportError(f"refusal_label {given!r} is not one of the model's labels {labels}.")
        return given
    hits = [lab for lab in labels if lab.lower() in _REFUSAL_NAMES]
    if len(hits) != 1:
        raise ExportError(f"Cannot tell which of {labels} means refusal; pass refusal_label=.")
    return hits[0]


def export_onnx(
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    quantize: bool = True,
    opset: int = 18,
    name: str | None = None,
    input_format: str = "response",
    refusal_label: str | None = None,
    max_tokens: int = 128,
    head_fraction: float = 0.75,
    threshold: float = 0.5,
    temperature: float = 1.0,
    base_model: str | None = None,
) -> dict[str, Any]:
    """Export ``model_dir`` to ``out_dir`` and return the written ``norefusal.json`` content.

    The fp32 graph is checked against torch on a padded batch (largest logit difference at
    most :data:`TOLERANCE`, else :class:`ExportError`); with ``quantize`` the shipped graph is
    then int8 (dynamic quantization of MatMul and embedding Gather weights).
    """
    try:
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification
    except ImportError as exc:
        raise MissingDependencyError("Exporting to ONNX", "onnx") from exc
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not any(model_dir.glob("*.safetensors")):
        raise ExportError(f"{model_dir} has no safetensors weights (other formats are not loaded).")
    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, use_safetensors=True, trust_remote_code=False, attn_implementation="eager"
    ).eval()
    labels = [config.id2label[i] for i in range(config.num_labels)]
    refusal = _refusal_label(labels, refusal_label)
    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters and (
        getattr(config, "type_vocab_size", 0) > 1
    )
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])

    class _Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
            logits: torch.Tensor = out.logits
            return logits

    # Inference mode for the wrapper as for the model (a new Module starts in training mode):
    # dropout off, and torch.onnx exports what the scanner will run.
    logits_of = _Logits().eval()
    sample = _sample_batch(config)
    args = tuple(torch.from_numpy(sample[n]) for n in names)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
        shapes = {n: {0: batch, 1: seq} for n in names}
        with torch.no_grad():
            program = torch.onnx.export(
                logits_of,
                args,
                input_names=names,
                output_names=["logits"],
                dynamic_shapes=shapes,
                opset_version=opset,
                dynamo=True,
                external_data=False,
            )
            assert program is not None
            program.save(str(fp32), external_data=False)
            # Check on a batch of another shape too, so the dynamic axes are exercised.
            for check in (sample, _sample_batch(config, rows=2, width=23, seed=1)):
                feeds = {n: check[n] for n in names}
                expected = logits_of(*(torch.from_numpy(feeds[n]) for n in names)).numpy()
                diff = float(np.max(np.abs(_run_onnx(fp32, feeds) - expected)))
                if not diff <= TOLERANCE:
                    raise ExportError(
                        f"ONNX logits differ from torch by {diff:.2e} (> {TOLERANCE})."
                    )
        target = out_dir / MODEL_NAME
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(
                fp32, target, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"]
            )
        else:
            shutil.copyfile(fp32, target)
    _copy_tokenizer(model_dir, out_dir / TOKENIZER_NAME)
    return write_config(
        out_dir,
        name=name or model_dir.name,
        input_format=input_format,
        labels=labels,
        refusal_label=refusal,
        max_tokens=max_tokens,
        head_fraction=head_fraction,
        threshold=threshold,
        temperature=temperature,
        base_model=base_model or getattr(config, "_name_or_path", "") or str(model_dir),
    )


def _sample_batch(
    config: Any, rows: int = 3, width: int = 16, seed: int = 0
) -> dict[str, np.ndarray]:
    """A small padded batch: rows of different lengths exercise the attention mask."""
    rng = np.random.default_rng(seed)
    vocab = int(getattr(config, "vocab_size", 1000))
    ids = rng.integers(5, max(6, vocab), size=(rows, width), dtype=np.int64)
    mask = np.ones_like(ids)
    for r in range(1, rows):
        mask[r, width - r * 5 :] = 0
    pad = int(getattr(config, "pad_token_id", 0) or 0)
    ids[mask == 0] = pad
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _run_onnx(path: Path, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["logits"], dict(feeds))[0])


def _copy_tokenizer(model_dir: Path, target: Path) -> None:
    source = model_dir / TOKENIZER_NAME
    if source.exists():
        shutil.copyfile(source, target)
        return
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    if not getattr(tok, "is_fast", False):
        raise ExportError(f"{model_dir} has no tokenizer.json and no fast tokenizer to write one.")
    tok.backend_tokenizer.save(str(target))


def main(argv: Sequence[str] | None = None) -> int:
    """``norefusal export MODEL_DIR OUT_DIR``: a local Hugging Face classifier to ONNX."""
    parser = argparse.ArgumentParser(
        prog="norefusal export",
        description="Export a local Hugging Face sequence classifier (safetensors) to ONNX.",
    )
    parser.add_argument(
        "model_dir", type=Path, help="a local Hugging Face classifier (safetensors weights)"
    )
    parser.add_argument("out_dir", type=Path, help="where the ONNX directory is written")
    parser.add_argument("--no-quantize", action="store_true", help="keep fp32 (default: int8)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default: %(default)s)")
    parser.add_argument("--name", default=None, help="the model's name (default: the directory's)")
    parser.add_argument(
        "--input-format",
        choices=("response", "conversation"),
        default="response",
        help="what the model reads: the response alone, or the conversation (default: response)",
    )
    parser.add_argument("--refusal-label", default=None, help="default: found in id2label")
    parser.add_argument(
        "--max-tokens", type=int, default=512, help="tokens the model reads (default: 512)"
    )
    parser.add_argument(
        "--head-fraction",
        type=float,
        default=0.75,
        help="share of --max-tokens taken from the head of a long output (default: 0.75)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="the calibrated threshold (default: 0.5)"
    )
    parser.add_argument(
        "--temperature", type=float, default=1.0, help="logit temperature (default: 1.0)"
    )
    args = parser.parse_args(argv)
    try:
        config = export_onnx(
            args.model_dir,
            args.out_dir,
            quantize=not args.no_quantize,
            opset=args.opset,
            name=args.name,
            input_format=args.input_format,
            refusal_label=args.refusal_label,
            max_tokens=args.max_tokens,
            head_fraction=args.head_fraction,
            threshold=args.threshold,
            temperature=args.temperature,
        )
    except (ExportError, OSError, ValueError) as exc:
        print(f"norefusal export: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(config, indent=2))
    return 0
