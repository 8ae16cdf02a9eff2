"""Reading and checking a model directory: ``norefusal.json``, file hashes, safe formats."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ModelLoadError
from ._labels import LabelInfo, resolve_labels
from ._text import InputFormat

__all__ = [
    "CONFIG_NAME",
    "ArtifactConfig",
    "check_no_pickle",
    "read_artifact_config",
    "sha256_file",
    "verify_files",
]

CONFIG_NAME = "norefusal.json"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


@dataclass(frozen=True)
class ArtifactConfig:
    """What ``norefusal.json`` says about an ONNX model directory."""

    name: str
    labels: LabelInfo
    input_format: InputFormat
    max_tokens: int
    head_fraction: float
    threshold: float
    temperature: float
    files: dict[str, str] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_artifact_config(directory: Path) -> ArtifactConfig:
    """Parse ``directory/norefusal.json``.

    Raises:
        ModelLoadError: the file is missing or malformed, naming the file and the field.
    """
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: an ONNX model directory needs {CONFIG_NAME}.")
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}.") from exc
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{path} must hold a JSON object.")
    try:
        labels = list(raw["labels"])
        info = resolve_labels(dict(enumerate(labels)), where=str(path))
        refusal_label = raw.get("refusal_label", labels[info.refusal_index])
        if refusal_label != labels[info.refusal_index]:
            raise ModelLoadError(
                f"{path}: refusal_label {refusal_label!r} does not match labels {labels}."
            )
        fmt = InputFormat(raw.get("input_format", info.input_format.value))
        config = ArtifactConfig(
            name=str(raw.get("name", directory.name)),
            labels=info,
            input_format=fmt,
            max_tokens=int(raw.get("max_tokens", 512)),
            head_fraction=float(raw.get("head_fraction", 0.75)),
            threshold=float(raw.get("threshold", 0.5)),
            temperature=float(raw.get("temperature", 1.0)),
            files={str(k): str(v) for k, v in dict(raw.get("files", {})).items()},
        )
    except ModelLoadError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: bad or missing field ({exc!r}).") from exc
    if not 0.0 < config.threshold < 1.0 or config.temperature <= 0 or config.max_tokens < 16:
        raise ModelLoadError(f"{path}: threshold, temperature or max_tokens out of range.")
    return config


def verify_files(directory: Path, files: dict[str, str]) -> None:
    """Check each listed file's SHA256; a missing or altered file raises ModelLoadError."""
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise ModelLoadError(f"{path} is missing.")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelLoadError(
                f"{path} is corrupted or was replaced: its SHA256 is {actual}, "
                f"but {CONFIG_NAME} records {expected}."
            )


def check_no_pickle(directory: Path) -> None:
    """Refuse a directory whose weights exist only in a pickle-based format."""
    if any(directory.glob("*.safetensors")) or any(directory.glob("*.onnx")):
        return
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise ModelLoadError(
            f"{directory} holds only pickle-based weights ({', '.join(pickles)}), which can run "
            "code when loaded. norefusal loads safetensors or ONNX only: convert the model "
            "with `model.save_pretrained(dir, safe_serialization=True)`."
        )
