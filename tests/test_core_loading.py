"""Model resolution and loading: presets, directories, labels, safety checks, bad options."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import norefusal._presets
import pytest
from norefusal import (
    PRESETS,
    ConfigurationError,
    InputFormat,
    MissingDependencyError,
    ModelLoadError,
    NoRefusalScanner,
)
from norefusal._labels import resolve_labels

# -- label mapping -------------------------------------------------------------------------


def test_protectai_labels_map_rejection_to_refusal(roberta_scanner: NoRefusalScanner) -> None:
    backend: Any = roberta_scanner.load()
    assert backend._labels.labels == ("NORMAL", "REJECTION")
    assert backend._labels.refusal_index == 1
    assert roberta_scanner._resolved.input_format is InputFormat.RESPONSE


def test_agentlans_labels_map_refusal_and_conversation_format(
    bert_scanner: NoRefusalScanner,
) -> None:
    backend: Any = bert_scanner.load()
    assert backend._labels.labels == ("Non-refusal", "Refusal")
    assert backend._labels.refusal_index == 1
    assert bert_scanner._resolved.input_format is InputFormat.CONVERSATION


@pytest.mark.parametrize(
    ("id2label", "index"),
    [
        ({"0": "REJECTION", "1": "NORMAL"}, 0),
        ({"1": "Non-refusal", "0": "Refusal"}, 0),
        ({0: "compliance", 1: "refusal"}, 1),
    ],
)
def test_refusal_index_follows_label_order(id2label: dict[Any, str], index: int) -> None:
    assert resolve_labels(id2label, where="x/config.json").refusal_index == index


def test_score_is_the_refusal_column(tiny_roberta_dir: Path, tmp_path: Path) -> None:
    """Swapping id2label in config.json turns every score s into 1 - s."""
    swapped = tmp_path / "swapped"
    shutil.copytree(tiny_roberta_dir, swapped)
    config = json.loads((swapped / "config.json").read_text())
    config["id2label"] = {"0": "REJECTION", "1": "NORMAL"}
    config["label2id"] = {"REJECTION": 0, "NORMAL": 1}
    (swapped / "config.json").write_text(json.dumps(config))
    texts = ["I'm sorry, but I can't help with that.", "Paris is the capital of France."]
    original = NoRefusalScanner(model=str(tiny_roberta_dir), backend="transformers")
    flipped = NoRefusalScanner(model=str(swapped), backend="transformers")
    for text in texts:
        a, b = original.scan("", text).score, flipped.scan("", text).score
        assert a == pytest.approx(1.0 - b, abs=1e-6)
        assert abs(a - 0.5) > 1e-4  # the model is not blind: the check above can fail


def test_unknown_label_set_names_labels_and_file(tiny_bert_dir: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    shutil.copytree(tiny_bert_dir, odd)
    config = json.loads((odd / "config.json").read_text())
    config["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
    (odd / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as info:
        NoRefusalScanner(model=str(odd))
    message = str(info.value)
    assert "LABEL_0" in message
    assert "LABEL_1" in message
    assert str(odd / "config.json") in message
    assert "REJECTION" in message  # says which label sets would do


def test_three_labels_are_refused_even_if_known_ones_are_among_them() -> None:
    with pytest.raises(ModelLoadError, match="unrecognised labels"):
        resolve_labels({0: "refusal", 1: "compliance", 2: "refusal"}, where="m/config.json")


def test_onnx_config_labels_are_checked(tiny_onnx_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad-onnx"
    shutil.copytree(tiny_onnx_dir, bad)
    config = json.loads((bad / "norefusal.json").read_text())
    config["labels"] = ["yes", "no"]
    (bad / "norefusal.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as info:
        NoRefusalScanner(model=str(bad))
    assert "'yes'" in str(info.value)
    assert "norefusal.json" in str(info.value)


# -- missing and unsafe files ----------------------------------------------------------------


def _copy_without(src: Path, dst: Path, *names: str) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*names))
    return dst


def test_missing_config_json_is_named(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = _copy_without(tiny_bert_dir, tmp_path / "m", "config.json")
    with pytest.raises(ModelLoadError) as info:
        NoRefusalScanner(model=str(model))
    assert str(model / "config.json") in str(info.value)


def test_missing_tokenizer_json_is_named(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = _copy_without(tiny_bert_dir, tmp_path / "m", "tokenizer.json")
    scanner = NoRefusalScanner(model=str(model))
    with pytest.raises(ModelLoadError) as info:
        scanner.scan("p", "some output")
    assert str(model / "tokenizer.json") in str(info.value)


def test_missing_weights_are_named(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = _copy_without(tiny_bert_dir, tmp_path / "m", "*.safetensors")
    with pytest.raises(ModelLoadError, match=r"safetensors"):
        NoRefusalScanner(model=str(model)).load()


def test_pickle_only_directory_is_refused(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    model = _copy_without(tiny_bert_dir, tmp_path / "m", "*.safetensors")
    torch.save(load_file(str(tiny_bert_dir / "model.safetensors")), model / "pytorch_model.bin")
    with pytest.raises(ModelLoadError) as info:
        NoRefusalScanner(model=str(model)).load()
    assert "pytorch_model.bin" in str(info.value)
    assert "safetensors" in str(info.value)


def test_onnx_directory_missing_files(tiny_onnx_dir: Path, tmp_path: Path) -> None:
    no_config = _copy_without(tiny_onnx_dir, tmp_path / "a", "norefusal.json")
    with pytest.raises(ModelLoadError) as info:
        NoRefusalScanner(model=str(no_config), backend="onnx")
    assert str(no_config / "norefusal.json") in str(info.value)
    no_model = _copy_without(tiny_onnx_dir, tmp_path / "b", "model.onnx")
    with pytest.raises(ModelLoadError) as info:
        NoRefusalScanner(model=str(no_model)).load()
    assert str(no_model / "model.onnx") in str(info.value)


def test_corrupted_onnx_model_is_refused(tiny_onnx_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "corrupt"
    shutil.copytree(tiny_onnx_dir, model)
    data = bytearray((model / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model / "model.onnx").write_bytes(bytes(data))
    scanner = NoRefusalScanner(model=str(model))
    with pytest.raises(ModelLoadError) as info:
        scanner.scan("", "hello")
    assert "model.onnx" in str(info.value)
    assert "SHA256" in str(info.value)


def test_missing_directory_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        NoRefusalScanner(model=str(tmp_path / "nowhere"))


def test_trust_remote_code_is_never_true(
    tiny_roberta_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers
    from norefusal._backends._transformers import load_hf_labels

    seen: list[tuple[str, dict[str, Any]]] = []

    def spy(cls: Any, name: str) -> None:
        original = cls.from_pretrained

        def from_pretrained(*args: Any, **kwargs: Any) -> Any:
            seen.append((name, kwargs))
            return original(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", from_pretrained)

    spy(transformers.AutoTokenizer, "tokenizer")
    spy(transformers.AutoModelForSequenceClassification, "model")
    spy(transformers.AutoConfig, "config")
    NoRefusalScanner(model=str(tiny_roberta_dir), backend="transformers").load()
    load_hf_labels(str(tiny_roberta_dir))
    assert {name for name, _ in seen} == {"tokenizer", "model", "config"}
    for _, kwargs in seen:
        assert kwargs.get("trust_remote_code") is False
    model_kwargs = [kw for name, kw in seen if name == "model"]
    assert all(kw.get("use_safetensors") is True for kw in model_kwargs)


# -- options -----------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0, 1, 1.5, -0.1, "x", float("nan"), True])
def test_bad_threshold_fails_at_construction(threshold: Any) -> None:
    with pytest.raises(ValueError, match="threshold") as info:
        NoRefusalScanner(model="keyword", threshold=threshold)
    assert isinstance(info.value, ConfigurationError)


def test_threshold_accepts_any_real_number() -> None:
    import numpy as np

    quarter: Any = np.float32(0.25)
    assert NoRefusalScanner(model="keyword", threshold=quarter).threshold == 0.25
    assert type(NoRefusalScanner(model="keyword", threshold=np.float64(0.5)).threshold) is float


@pytest.mark.parametrize("model", ["", "  "])
def test_empty_model_name(model: str) -> None:
    with pytest.raises(ConfigurationError, match="model is empty"):
        NoRefusalScanner(model=model)


def test_threshold_is_used(keyword_scanner: NoRefusalScanner) -> None:
    text = "I'm sorry."
    score = keyword_scanner.scan("", text).score
    assert 0.1 < score < 0.9
    low = NoRefusalScanner(model="keyword", threshold=score - 0.01).scan("", text)
    high = NoRefusalScanner(model="keyword", threshold=score + 0.01).scan("", text)
    assert (low.is_refusal, high.is_refusal) == (True, False)
    assert low.threshold == pytest.approx(score - 0.01)


def test_unknown_preset_lists_presets_and_suggests() -> None:
    with pytest.raises(ConfigurationError) as info:
        NoRefusalScanner(model="protectia")
    message = str(info.value)
    for name in PRESETS:
        assert name in message
    assert "Did you mean 'protectai'?" in message


def test_unknown_backend_lists_backends_and_suggests() -> None:
    with pytest.raises(ConfigurationError) as info:
        NoRefusalScanner(model="keyword", backend="onxx")
    message = str(info.value)
    assert "'onnx'" in message
    assert "'transformers'" in message
    assert "Did you mean 'onnx'?" in message


@pytest.mark.parametrize("option", [{"match": "word"}, {"max_tokens": 4}, {"batch_size": 0}])
def test_other_bad_options(option: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(option))):
        NoRefusalScanner(model="keyword", **option)


def test_cuda_with_onnx_is_an_error(tiny_onnx_dir: Path) -> None:
    with pytest.raises(ConfigurationError, match="CPU"):
        NoRefusalScanner(model=str(tiny_onnx_dir), backend="onnx", device="cuda")
    # The backend chosen for the directory (ONNX) cannot use the device either.
    with pytest.raises(ConfigurationError, match="CPU"):
        NoRefusalScanner(model=str(tiny_onnx_dir), device="cuda")
    with pytest.raises(ConfigurationError, match="CPU"):
        NoRefusalScanner(model="keyword", device="cuda")


def test_bad_device_for_transformers_is_a_model_load_error(tiny_bert_dir: Path) -> None:
    scanner = NoRefusalScanner(model=str(tiny_bert_dir), device="no-such-device")
    with pytest.raises(ModelLoadError, match="no-such-device"):
        scanner.load()


def test_hf_directory_with_onnx_backend_says_to_export(tiny_bert_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="norefusal export"):
        NoRefusalScanner(model=str(tiny_bert_dir), backend="onnx")


def test_preset_rejects_a_backend_it_cannot_run_on() -> None:
    with pytest.raises(ConfigurationError, match="export"):
        NoRefusalScanner(model="protectai", backend="onnx")
    with pytest.raises(ConfigurationError, match="keyword"):
        NoRefusalScanner(model="keyword", backend="transformers")


def test_presets_resolve_without_loading() -> None:
    """Construction is cheap: hub presets resolve (no download) until the first scan."""
    protectai = NoRefusalScanner(model="protectai")
    agentlans = NoRefusalScanner(model="agentlans")
    assert (protectai.backend_name, protectai.threshold) == ("transformers", 0.75)
    assert protectai._resolved.input_format is InputFormat.RESPONSE
    assert agentlans._resolved.input_format is InputFormat.CONVERSATION
    # A hub id of a preset resolves to that preset.
    assert NoRefusalScanner(model=PRESETS["protectai"].source or "").model_name == "protectai"


def test_missing_default_model_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(norefusal._presets, "DEFAULT_MODEL_DIR", tmp_path / "default")
    with pytest.raises(ModelLoadError) as info:
        NoRefusalScanner()
    assert "missing" in str(info.value)
    assert "model='keyword'" in str(info.value)


def test_default_preset_loads_the_embedded_directory(
    tiny_onnx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(norefusal._presets, "DEFAULT_MODEL_DIR", tiny_onnx_dir)
    scanner = NoRefusalScanner()
    assert (scanner.model_name, scanner.backend_name) == ("default", "onnx")
    direct = NoRefusalScanner(model=str(tiny_onnx_dir))
    text = "I'm sorry, but I can't help with that."
    assert scanner.scan("", text).score == pytest.approx(direct.scan("", text).score, abs=1e-9)


def test_transformers_backend_without_torch_names_the_extra(
    tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "torch" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    for model in (str(tiny_bert_dir), "protectai", "someone/some-model"):
        with pytest.raises(MissingDependencyError) as info:
            NoRefusalScanner(model=model)
        assert 'pip install "norefusal[transformers]"' in str(info.value)
        assert isinstance(info.value, ImportError)
        assert info.value.extra == "transformers"
    # The core backends need no extra.
    NoRefusalScanner(model="keyword")


def test_max_tokens_caps_the_window(
    tiny_roberta_dir: Path,
    tiny_onnx_dir: Path,
    roberta_scanner: NoRefusalScanner,
    bert_scanner: NoRefusalScanner,
) -> None:
    long_text = "Step 1: open the file. " * 400
    # RoBERTa's 514 positions hold 512 tokens (its positions start after the padding index).
    for scanner, limit in ((roberta_scanner, 512), (bert_scanner, 512)):
        backend: Any = scanner.load()
        assert backend.max_tokens == limit
        assert backend._encoder.count_tokens(long_text) == limit
        assert 0.0 <= scanner.scan("", long_text).score <= 1.0  # no position overflow
    capped: Any = NoRefusalScanner(model=str(tiny_roberta_dir), max_tokens=24).load()
    assert capped.max_tokens == 24
    assert capped._encoder.encode([long_text, "short"]).input_ids.shape == (2, 24)
    # An ONNX model's own limit (norefusal.json max_tokens) is a ceiling, never raised.
    for asked, got in ((32, 32), (4096, 64)):
        onnx: Any = NoRefusalScanner(model=str(tiny_onnx_dir), max_tokens=asked).load()
        assert onnx.max_tokens == got
