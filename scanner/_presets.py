"""Model presets and model resolution: a name, hub id or directory becomes a backend factory.

Resolution is cheap and runs at construction, so a bad name, a missing directory or a missing
extra fails at once; loading the weights waits for the first scan.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._artifact import CONFIG_NAME, read_artifact_config
from ._backends import BACKENDS, Backend
from ._errors import ConfigurationError, MissingDependencyError, ModelLoadError
from ._labels import LabelInfo, resolve_labels
from ._text import InputFormat

__all__ = [
    "DEFAULT_MODEL_DIR",
    "MULTILINGUAL_MODEL_DIR",
    "PRESETS",
    "Preset",
    "ResolvedModel",
    "resolve_model",
]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "default"
#: The multilingual model the default preset routes non-English text to (issue 17).
MULTILINGUAL_MODEL_DIR = Path(__file__).resolve().parent / "models" / "multilingual"


@dataclass(frozen=True)
class Preset:
    """A named model: where it comes from, how its input looks, and its threshold."""

    name: str
    backend: str
    input_format: InputFormat
    threshold: float
    max_tokens: int = 512
    source: str | None = None
    revision: str | None = None
    description: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("default", "onnx", InputFormat.RESPONSE, 0.5, 128,
               description="the embedded int8 ONNX classifier shipped with norefusal"),
        Preset("protectai", "transformers", InputFormat.RESPONSE, 0.75, 512,
               source="ProtectAI/distilroberta-base-rejection-v1",
               revision="65584967c3f22ff7723e5370c65e0e76791e6055",
               description="LLM Guard's NoRefusal model (DistilRoBERTa, 82M)"),
        Preset("agentlans", "transformers", InputFormat.CONVERSATION, 0.5, 512,
               source="agentlans/snowflake-arctic-embed-xs-refusal-classifier",
               description="snowflake-arctic-embed-xs refusal classifier (BERT, 22.7M)"),
        Preset("keyword", "keyword", InputFormat.RESPONSE, 0.5, 0,
               description="phrase matching with word boundaries and position weights"),
        Preset("norefusal-light", "keyword", InputFormat.RESPONSE, 0.5, 0,
               description="LLM Guard's NoRefusalLight 28 phrases, as a baseline"),
    )
}  # fmt: skip

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ResolvedModel:
    """Everything the scanner needs before loading: the load itself is ``factory()``."""

    name: str
    backend: str
    input_format: InputFormat
    threshold: float
    factory: Callable[[], Backend]


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _require_extra(backend: str) -> None:
    extra = BACKENDS[backend]
    if extra == "transformers" and not all(
        importlib.util.find_spec(m) for m in ("torch", "transformers")
    ):
        raise MissingDependencyError(f"The {backend!r} backend", extra)


def _check_backend(backend: str | None) -> None:
    if backend is not None and backend not in BACKENDS:
        raise ConfigurationError(
            f"Unknown backend {backend!r}; choose one of {sorted(BACKENDS)}."
            + _did_you_mean(backend, list(BACKENDS))
        )


def _check_cpu_only(backend: str, device: str | None) -> None:
    if device not in (None, "cpu"):
        raise ConfigurationError(f"The {backend!r} backend runs on the CPU only; drop device=.")


def resolve_model(
    model: str | Path,
    *,
    backend: str | Backend | None = None,
    max_tokens: int | None = None,
    device: str | None = None,
) -> ResolvedModel:
    """Resolve ``model`` (a preset name, a local directory or a Hugging Face id).

    A :class:`Backend` instance as ``backend`` is used as it is (a custom classifier, or a fake
    in tests): it reads the response alone, and ``model`` only names it in results.

    Raises:
        ConfigurationError: unknown preset or backend, or a backend the model cannot run on.
        MissingDependencyError: the backend's extra is not installed.
        ModelLoadError: a directory or its description file is missing or malformed.
    """
    if isinstance(backend, Backend):
        instance = backend
        name = str(model) if model != "default" else getattr(instance, "name", "custom")
        return ResolvedModel(name, "custom", InputFormat.RESPONSE, 0.5, lambda: instance)
    _check_backend(backend)
    if backend in ("onnx", "keyword"):
        _check_cpu_only(backend, device)
    name = str(model)
    if not name.strip():  # Path("") would otherwise resolve to the working directory
        raise ConfigurationError(
            f"model is empty; pass a preset ({sorted(PRESETS)}), a Hugging Face model id or a "
            "local directory."
        )
    if name in PRESETS:
        return _resolve_preset(PRESETS[name], backend, max_tokens, device)
    path = Path(name).expanduser()
    if path.is_dir():
        return _resolve_directory(path, backend, max_tokens, device)
    if _HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        for preset in PRESETS.values():
            if preset.source == name:
                return _resolve_preset(preset, backend, max_tokens, device)
        return _resolve_hub(
            name,
            name,
            InputFormat.RESPONSE,
            0.5,
            None,
            backend,
            max_tokens,
            512,
            device,
            labels=None,
        )
    if path.suffix or "/" in name or "\\" in name:
        raise ModelLoadError(f"Model directory {name!r} does not exist.")
    raise ConfigurationError(
        f"Unknown model preset {name!r}; the presets are {sorted(PRESETS)}, or pass a Hugging "
        "Face model id or a local directory." + _did_you_mean(name, list(PRESETS))
    )


def _resolve_preset(
    preset: Preset, backend: str | None, max_tokens: int | None, device: str | None
) -> ResolvedModel:
    if preset.backend == "keyword":
        if backend not in (None, "keyword"):
            raise ConfigurationError(
                f"The {preset.name!r} preset runs on the 'keyword' backend only."
            )
        _check_cpu_only("keyword", device)
        from ._backends._keyword import KeywordBackend, NoRefusalLightBackend

        cls = KeywordBackend if preset.name == "keyword" else NoRefusalLightBackend
        return ResolvedModel(preset.name, "keyword", preset.input_format, preset.threshold, cls)
    if preset.name == "default":
        if not (DEFAULT_MODEL_DIR / CONFIG_NAME).is_file():
            raise ModelLoadError(
                "The embedded default model is missing from this installation "
                f"({DEFAULT_MODEL_DIR / CONFIG_NAME} not found). Reinstall norefusal, or pass "
                "model='keyword' or a model directory explicitly."
            )
        if backend not in (None, "onnx"):
            raise ConfigurationError("The 'default' preset ships as ONNX only; use backend='onnx'.")
        # Files the manifest lists are checked at load; one it omits would load unchecked.
        recorded = read_artifact_config(DEFAULT_MODEL_DIR).files
        unrecorded = sorted({"model.onnx", "tokenizer.json"} - set(recorded))
        if unrecorded:
            raise ModelLoadError(
                f"{DEFAULT_MODEL_DIR / CONFIG_NAME} records no SHA256 for {unrecorded}, so the "
                "embedded model cannot be verified. Reinstall norefusal."
            )
        resolved = _resolve_directory(DEFAULT_MODEL_DIR, "onnx", max_tokens, device)
        factory = resolved.factory
        if (MULTILINGUAL_MODEL_DIR / CONFIG_NAME).is_file():
            factory = _routed_factory(resolved)
        return ResolvedModel("default", "onnx", resolved.input_format, resolved.threshold, factory)
    assert preset.source is not None
    if backend == "onnx":
        raise ConfigurationError(
            f"The {preset.name!r} preset loads from the Hugging Face hub with the 'transformers' "
            f"backend. For ONNX, export it first (`norefusal export {preset.source} DIR`) and "
            "pass model=DIR."
        )
    return _resolve_hub(
        preset.name,
        preset.source,
        preset.input_format,
        preset.threshold,
        preset.revision,
        "transformers",
        max_tokens,
        preset.max_tokens,
        device,
        labels=None,
    )


def _routed_factory(english: ResolvedModel) -> Callable[[], Backend]:
    """The default preset's loader: English to ``english``, other languages to the multilingual."""
    from ._backends._ngram import read_ngram_config

    config = read_ngram_config(MULTILINGUAL_MODEL_DIR)  # a malformed file fails at construction
    if "model.npz" not in config.files:
        raise ModelLoadError(
            f"{MULTILINGUAL_MODEL_DIR / CONFIG_NAME} records no SHA256 for model.npz, so the "
            "embedded multilingual model cannot be verified. Reinstall norefusal."
        )

    def load_routed() -> Backend:
        from ._backends._ngram import NgramBackend
        from ._backends._routed import RoutedBackend

        return RoutedBackend(
            english.factory(),
            NgramBackend(MULTILINGUAL_MODEL_DIR),
            english_threshold=english.threshold,
            multilingual_threshold=config.threshold,
        )

    return load_routed


def _resolve_directory(
    path: Path, backend: str | None, max_tokens: int | None, device: str | None
) -> ResolvedModel:
    has_onnx = (path / CONFIG_NAME).is_file()
    has_hf = (path / "config.json").is_file()
    if backend is None:
        backend = "onnx" if has_onnx else "transformers"
    if backend == "keyword":
        raise ConfigurationError("The 'keyword' backend takes model='keyword', not a directory.")
    if backend == "onnx":
        _check_cpu_only(backend, device)  # also when the directory chose ONNX, not the caller
        if not has_onnx:
            hint = (
                f" It looks like a Hugging Face model: run `norefusal export {path} OUT`."
                if has_hf
                else ""
            )
            raise ModelLoadError(
                f"{path / CONFIG_NAME} is missing: not an ONNX model directory.{hint}"
            )
        config = read_artifact_config(path)

        def load_onnx() -> Backend:
            from ._backends._onnx import OnnxBackend

            return OnnxBackend(path, config, max_tokens=max_tokens)

        return ResolvedModel(config.name, "onnx", config.input_format, config.threshold, load_onnx)
    if not has_hf:
        raise ModelLoadError(
            f"{path / 'config.json'} is missing: not a Hugging Face model directory."
        )
    labels = _read_local_labels(path / "config.json")
    return _resolve_hub(
        path.name,
        str(path),
        labels.input_format,
        0.5,
        None,
        backend,
        max_tokens,
        512,
        device,
        labels=labels,
    )


def _read_local_labels(config_path: Path) -> LabelInfo:
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
        id2label = raw["id2label"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{config_path}: cannot read id2label ({exc!r}).") from exc
    if not isinstance(id2label, dict):
        raise ModelLoadError(f"{config_path}: id2label must be an object.")
    return resolve_labels(id2label, where=str(config_path))


def _resolve_hub(
    name: str,
    source: str,
    fmt: InputFormat,
    threshold: float,
    revision: str | None,
    backend: str | None,
    max_tokens: int | None,
    preset_max: int,
    device: str | None,
    *,
    labels: LabelInfo | None,
) -> ResolvedModel:
    backend = backend or "transformers"
    if backend != "transformers":
        raise ConfigurationError(
            f"{source!r} is a Hugging Face model: use backend='transformers', or export it "
            f"with `norefusal export {source} DIR` and pass model=DIR for ONNX."
        )
    _require_extra(backend)

    def load_transformers() -> Backend:
        from ._backends._transformers import TransformersBackend, load_hf_labels

        info = labels or load_hf_labels(source, revision=revision)
        return TransformersBackend(
            source,
            name=name,
            labels=info,
            max_tokens=max_tokens or preset_max,
            revision=revision,
            device=device,
        )

    return ResolvedModel(name, backend, fmt, threshold, load_transformers)
