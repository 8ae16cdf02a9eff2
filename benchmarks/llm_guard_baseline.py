"""LLM Guard's NoRefusal and NoRefusalLight, timed on the inputs that `norefusal bench` hands it.

llm-guard 0.3.16 pins transformers 4.51.3, so this script runs with the python of its own
virtual environment; `norefusal bench --llm-guard-python PATH` runs it for you:

    .venv-llmguard/bin/python benchmarks/llm_guard_baseline.py --inputs inputs.json --out raw.json

It needs only llm-guard (with torch, transformers and tokenizers), never the network. NoRefusal
runs with its default settings (``DEFAULT_MODEL``'s pipeline arguments: ``max_length=128``,
``truncation=True``, batch size 1, threshold 0.75) on a local model of the same shape as
ProtectAI/distilroberta-base-rejection-v1: a 6-layer RoBERTa (hidden 768, 12 heads, intermediate
3072, vocabulary 50265, 514 positions, labels NORMAL/REJECTION) with random weights, which run
exactly as fast as the trained ones, and a byte-level BPE tokenizer of the same vocabulary size
trained here on the benchmark's texts. The model is built once into ``--cache``.

The output holds raw timings in seconds (statistics are computed by the harness, so both sides
share one implementation), or ``{"ok": false, "error": ...}`` with exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

MODEL_DIR_NAME = "distilroberta-rejection-shape-v1"
NO_REFUSAL = "llm-guard NoRefusal"
NO_REFUSAL_LIGHT = "llm-guard NoRefusalLight"
#: The architecture of ProtectAI/distilroberta-base-rejection-v1 (its config.json).
SHAPE: dict[str, Any] = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "layer_norm_eps": 1e-5,
    "id2label": {0: "NORMAL", 1: "REJECTION"},
    "label2id": {"NORMAL": 0, "REJECTION": 1},
}
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def corpus_texts(inputs: dict[str, Any], corpus: Path | None) -> Iterator[str]:
    """Texts to train the tokenizer on: the data files' prompts and responses, and the inputs."""
    if corpus is not None and corpus.is_dir():
        for path in sorted(corpus.glob("*.jsonl")):
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    row = json.loads(line)
                    yield str(row.get("prompt") or "")
                    yield str(row.get("response") or "")
    for prompt, output in inputs["sample"]:
        yield prompt
        yield output
    yield from inputs["lengths"].values()


def build_model(cache: Path, texts: Callable[[], Iterator[str]]) -> Path:
    """Build (once) the DistilRoBERTa-shaped classifier and its tokenizer under ``cache``."""
    target = cache / MODEL_DIR_NAME
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{MODEL_DIR_NAME}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts(),
        vocab_size=SHAPE["vocab_size"],
        min_frequency=2,
        special_tokens=SPECIALS,
        show_progress=False,
    )
    bpe.save_model(str(tmp))
    tokenizer = RobertaTokenizerFast(
        vocab_file=str(tmp / "vocab.json"),
        merges_file=str(tmp / "merges.txt"),
        model_max_length=512,
    )
    tokenizer.save_pretrained(str(tmp))
    torch.manual_seed(0)
    config = RobertaConfig(**SHAPE, architectures=["RobertaForSequenceClassification"])
    RobertaForSequenceClassification(config).save_pretrained(str(tmp), safe_serialization=True)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def no_refusal(model_dir: Path) -> Any:
    """LLM Guard's NoRefusal with its default settings, on the local model."""
    from llm_guard.output_scanners import NoRefusal
    from llm_guard.output_scanners.no_refusal import DEFAULT_MODEL

    model = dataclasses.replace(
        DEFAULT_MODEL, path=str(model_dir), revision=None, onnx_path=None, onnx_revision=None
    )
    return NoRefusal(model=model, threshold=0.75)


def no_refusal_light(_model_dir: Path) -> Any:
    from llm_guard.output_scanners import NoRefusalLight

    return NoRefusalLight()


FACTORIES: dict[str, Callable[[Path], Any]] = {
    NO_REFUSAL: no_refusal,
    NO_REFUSAL_LIGHT: no_refusal_light,
}


def quiet_logs() -> None:
    """Send LLM Guard's logs (structlog prints every debug line to stdout by default) away."""
    from llm_guard.util import configure_logger

    configure_logger(log_level="WARNING", stream=sys.stderr)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(scanner: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """The same measurements as the harness makes on norefusal, in the same order."""
    sample = [(p, o) for p, o in inputs["sample"]]
    for prompt, output in sample[: inputs["warmup"]]:
        scanner.scan(prompt, output)
    latency = [
        timed(partial(scanner.scan, p, o)) for _ in range(inputs["repeats"]) for p, o in sample
    ]
    # LLM Guard has no batch API: its throughput path is a loop of scan().
    start = time.perf_counter()
    for _ in range(inputs["batch_repeats"]):
        for prompt, output in sample:
            scanner.scan(prompt, output)
    batch = {
        "texts": len(sample) * inputs["batch_repeats"],
        "seconds": time.perf_counter() - start,
        "api": "scan() loop (no batch API)",
    }
    lengths = {
        key: [timed(partial(scanner.scan, "", text)) for _ in range(inputs["length_repeats"])]
        for key, text in inputs["lengths"].items()
    }
    return {
        "latency_s": latency,
        "batch": batch,
        "length_s": lengths,
        "stream": stream(scanner, inputs["stream"]),
    }


def stream(scanner: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """LLM Guard's streaming example: rescan the whole text so far on every chunk past 30 chars.

    The example stops at the first invalid verdict; the stream here is an answer, and the model's
    weights are random, so every chunk is scanned, as it is for an answer that passes.
    """
    prompt, deltas = spec["prompt"], spec["deltas"]
    text, scans = "", 0
    start = time.perf_counter()
    for delta in deltas:
        text += delta
        if len(text) > 30:
            scanner.scan(prompt, text)
            scans += 1
    seconds = time.perf_counter() - start
    full = sorted(timed(lambda: scanner.scan(prompt, text)) for _ in range(3))[1]
    return {"seconds": seconds, "scans": scans, "deltas": len(deltas), "full_scan_s": full}


def cold(name: str, model_dir: Path, inputs_path: Path) -> dict[str, Any]:
    """Run in a fresh process: import to first result, then the sample, then peak RSS."""
    inputs = json.loads(inputs_path.read_text(encoding="utf-8"))
    prompt, output = inputs["sample"][0]
    start = time.perf_counter()  # nothing of llm_guard, torch or transformers is imported yet
    quiet_logs()
    scanner = FACTORIES[name](model_dir)
    scanner.scan(prompt, output)
    seconds = time.perf_counter() - start
    for p, o in inputs["sample"][:32]:  # as many as norefusal's one batch
        scanner.scan(p, o)
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB).

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries the parent's high-water mark over fork and
    exec into ``ru_maxrss``, so a child of a process holding a model would report the parent's.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def run_cold(name: str, model_dir: Path, inputs_path: Path) -> dict[str, Any]:
    args = [sys.executable, __file__, "--cold", name, "--model-dir", str(model_dir)]
    proc = subprocess.run(
        [*args, "--inputs", str(inputs_path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return {"error": f"cold-start process exited {proc.returncode}: {proc.stderr[-800:]}"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("llm-guard", "transformers", "torch", "tokenizers")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, required=True, help="inputs JSON from the harness")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here (not stdout)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "norefusal-bench")
    parser.add_argument("--corpus", type=Path, default=None, help="data dir for the tokenizer")
    parser.add_argument("--model-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cold", choices=sorted(FACTORIES), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.cold is not None:  # the child of run_cold
        print(json.dumps(cold(args.cold, args.model_dir, args.inputs)))
        return 0
    try:
        inputs = json.loads(args.inputs.read_text(encoding="utf-8"))
        model_dir = build_model(args.cache, lambda: corpus_texts(inputs, args.corpus))
        quiet_logs()
        out: dict[str, Any] = {"ok": True, "versions": versions(), "model_dir": str(model_dir)}
        scanners: dict[str, Any] = {}
        for name, factory in FACTORIES.items():
            raw = measure(factory(model_dir), inputs)
            raw["cold"] = run_cold(name, model_dir, args.inputs)
            scanners[name] = raw
        out["scanners"] = scanners
        status = 0
    except Exception as exc:  # report any failure as data: the harness prints the reason
        out = {"ok": False, "error": f"{exc!r}", "traceback": traceback.format_exc()[-2000:]}
        status = 1
    text = json.dumps(out)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
