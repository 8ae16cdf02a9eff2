"""How fast `norefusal audit` goes, locally and on Ray, and what a 100M-rows-an-hour cluster takes.

Run from the repository root (it reads the synthetic rows of tests/_audit_rows.py):

    nice -n 10 .venv/bin/python benchmarks/audit_scale.py --json audit-bench.json

Three measurements, each side in its own process so that its peak memory is its own:

1. ``million``: the local engine on ``--rows`` (1,000,000) synthetic rows of the ``keyword``
   preset against ``scan_batch`` on the same rows, already in memory. A fast scorer is the
   hardest case for the engine: its reading, Parquet writing and counting weigh the most next
   to it. Order: scan_batch, engine, scan_batch; the ratio divides by the mean of the two
   baselines, so a load that drifts during the run cancels out to first order.
2. ``model``: the same on ``--model-rows`` rows through the embedded default model.
3. ``ray``: the default model on ``--ray-rows`` rows with chat-length answers (each fills the
   model's 128-token window): the local engine, then the Ray engine with 1 and 2 actors on a
   local Ray of 2 CPUs. Steady throughput counts the rows between the first and the last
   batch that reached the driver, so Ray's start-up is reported apart. Peak memory sums the
   proportional set size (PSS) of the whole process tree (Ray's GCS, raylet and workers).

Then the cluster estimate: actors and cores for 100 million rows an hour from the measured
per-actor throughput, and GPUs under a stated assumption (no GPU is measured here), with the
CPU cores their tokenization needs, measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

TARGET_ROWS_PER_HOUR = 100_000_000
#: Assumed outputs/s of one GPU actor running the default model (4 layers, hidden 384, 128
#: tokens): about 1.8 GFLOP per output, so 3,000/s is a T4-class GPU at under 10% of its fp16
#: peak, a rate small BERT models reach in fp16 batches of 64. Not measured: no GPU here.
GPU_ROWS_PER_S = 3000


# -- children: one measurement each ----------------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_scan_batch(args: argparse.Namespace) -> dict[str, Any]:
    from norefusal import NoRefusalScanner

    with open(args.file, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    pairs = [(r["prompt"], r["response"]) for r in rows]
    del rows
    scanner = NoRefusalScanner(model=args.model)
    scanner.load()
    wall, cpu = time.perf_counter(), time.process_time()
    scanner.scan_batch(pairs)
    return {
        "rows": len(pairs),
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "peak_rss_mb": _peak_rss_mb(),
    }


def child_audit(args: argparse.Namespace) -> dict[str, Any]:
    stamps: list[tuple[float, int]] = []
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        stamps.append((time.perf_counter(), done[0]))

    extra: dict[str, Any] = {}
    init_s = 0.0
    if args.engine == "ray":
        import ray
        from norefusal.audit import RayOptions

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - started
        extra["ray"] = RayOptions(actors=args.actors, cpus_per_actor=args.cpus_per_actor)
    from norefusal.audit import audit

    wall, cpu = time.perf_counter(), time.process_time()
    result = audit(
        [args.file],
        out=args.out,
        engine=args.engine,
        scanner={"model": args.model},
        batch_size=args.batch_size,
        progress=progress,
        **extra,
    )
    wall_s = time.perf_counter() - wall
    steady = None
    if len(stamps) > 2:
        (t0, n0), (t1, n1) = stamps[0], stamps[-1]
        steady = (n1 - n0) / (t1 - t0) if t1 > t0 else None
    if args.engine == "ray":
        import ray

        ray.shutdown()
    return {
        "rows": result.summary["outputs"],
        "wall_s": wall_s,
        "cpu_s": time.process_time() - cpu,
        "ray_init_s": init_s,
        "steady_rows_per_s": steady,
        "peak_rss_mb": _peak_rss_mb(),
    }


# -- the parent: runs children, samples their memory -----------------------------------------


def _tree_pss_kb(root: int) -> int:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def run_child(mode: str, **options: Any) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", mode]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_pss_kb(proc.pid))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{mode} {options} failed with exit status {proc.returncode}")
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    data["peak_tree_pss_mb"] = peak[0] / 1024
    data["rows_per_s"] = data["rows"] / data["wall_s"]
    data["cpu_rows_per_s"] = data["rows"] / data["cpu_s"]
    print(
        f"  {mode} {options.get('engine', '')} {options.get('actors', '')}: "
        f"{data['rows_per_s']:,.0f} rows/s, {data['peak_tree_pss_mb']:,.0f} MB",
        file=sys.stderr,
    )
    return data


def compare(path: Path, rows: int, model: str, work: Path) -> dict[str, Any]:
    """scan_batch, the local engine, scan_batch again, on the same file."""
    first = run_child("scan_batch", file=path, model=model)
    engine = run_child(
        "audit", file=path, model=model, engine="local", out=work / f"out-{model}", batch_size=1024
    )
    second = run_child("scan_batch", file=path, model=model)
    base_wall = (first["wall_s"] + second["wall_s"]) / 2
    base_cpu = (first["cpu_s"] + second["cpu_s"]) / 2
    return {
        "rows": rows,
        "model": model,
        "scan_batch": [first, second],
        "engine": engine,
        "throughput_ratio_wall": base_wall / engine["wall_s"],
        "throughput_ratio_cpu": base_cpu / engine["cpu_s"],
    }


def tokenizer_rows_per_s(texts: list[str]) -> float:
    """Texts/s one core tokenizes with the default model's tokenizer (a GPU does not do this)."""
    import norefusal
    from tokenizers import Tokenizer

    path = Path(norefusal.__file__).parent / "models" / "default" / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    started = time.process_time()
    for text in texts:
        tokenizer.encode(text)
    return len(texts) / (time.process_time() - started)


def estimate(per_actor: float, tokenize_per_core: float) -> dict[str, Any]:
    rate = TARGET_ROWS_PER_HOUR / 3600
    actors = math.ceil(rate / per_actor)
    gpus = math.ceil(rate / GPU_ROWS_PER_S)
    return {
        "target_rows_per_s": rate,
        "cpu": {
            "rows_per_s_per_actor": per_actor,
            "actors_of_1_cpu": actors,
            "nodes_of_16_cores": math.ceil(actors / 15),
        },  # one core a node left to read
        "gpu": {
            "assumed_rows_per_s_per_gpu": GPU_ROWS_PER_S,
            "gpus": gpus,
            "tokenizer_rows_per_s_per_core": tokenize_per_core,
            "tokenizer_cores": math.ceil(rate / tokenize_per_core),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--model-rows", type=int, default=2_000)
    parser.add_argument("--ray-rows", type=int, default=3_000)
    parser.add_argument("--skip", nargs="*", default=[], choices=("million", "model", "ray"))
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    for name in ("file", "model", "engine", "out"):
        parser.add_argument(f"--{name}", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--actors", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--cpus-per-actor", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=256, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child = child_scan_batch if args.child == "scan_batch" else child_audit
        print(json.dumps(child(args)))
        return 0

    from _audit_rows import pair_rows, write_jsonl

    figures: dict[str, Any] = {"load_average_at_start": os.getloadavg(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        work = Path(tmp)
        if "million" not in args.skip:
            print(f"million: {args.rows:,} rows, keyword", file=sys.stderr)
            path = work / "million.jsonl"
            with path.open("w", encoding="utf-8") as fh:  # in slices: the list would be big
                for start in range(0, args.rows, 100_000):
                    n = min(100_000, args.rows - start)
                    fh.writelines(json.dumps(r) + "\n" for r in pair_rows(n, start=start))
            figures["million"] = compare(path, args.rows, "keyword", work)
            path.unlink()
        if "model" not in args.skip:
            print(f"model: {args.model_rows:,} rows, default model", file=sys.stderr)
            path = write_jsonl(work / "model.jsonl", pair_rows(args.model_rows, sentences=8))
            figures["model"] = compare(path, args.model_rows, "default", work)
        if "ray" not in args.skip:
            print(f"ray: {args.ray_rows:,} rows, default model", file=sys.stderr)
            rows = pair_rows(args.ray_rows, seed=7, sentences=8)
            path = write_jsonl(work / "ray.jsonl", rows)
            common = {"file": path, "model": "default", "batch_size": 256}
            runs = {
                "local": run_child("audit", engine="local", out=work / "r0", **common),
                "ray_1_actor": run_child(
                    "audit", engine="ray", actors=1, out=work / "r1", **common
                ),
                # Ray Data's read tasks keep one of the 2 CPUs: two actors reserve half each.
                "ray_2_actors": run_child(
                    "audit", engine="ray", actors=2, cpus_per_actor=0.5, out=work / "r2", **common
                ),
            }
            figures["ray"] = runs
            per_actor = runs["ray_2_actors"]["steady_rows_per_s"] / 2
            tokenize = tokenizer_rows_per_s([r["response"] for r in rows[:1000]])
            figures["estimate"] = estimate(per_actor, tokenize)
    figures["load_average_at_end"] = os.getloadavg()
    text = json.dumps(figures, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
