"""Benchmark of ``norefusal serve`` over loopback, beside the same work in process, in one run.

    python -m norefusal.server.bench [--requests 100000] [--data ../shared/data] [--json FILE]

In process: sequential ``scan`` latency, ``scan_batch`` throughput, the same scans from 16 and
64 threads, and ``scan_batch`` at 1, 4, 8 and 16 texts per forward pass (does coalescing
requests into batches gain anything, and how far does it move scores?). Over loopback: a
``norefusal serve`` subprocess, driven by 1, 16 and 64 concurrent keep-alive clients: p50/p99
latency, throughput, errors (any non-200, or a score that differs from the in-process score
of the same input), and the server's RSS across the 64-client run; plus one client through
:class:`~norefusal.RemoteScanner`. Absolute figures depend on the machine and its load: the
ratios, measured in the same run, are what the targets check.

The load generator speaks HTTP/1.1 over raw asyncio streams, like wrk: on a small machine a
full HTTP client library in the same process would take the CPU the server is being measured
on. The RemoteScanner row shows what a real client adds on top.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .._remote import RemoteScanner
from .._scanner import NoRefusalScanner
from ..bench._inputs import load_inputs

__all__ = ["main"]

_REPO = Path(__file__).resolve().parents[2]
TARGETS = {
    "p50 overhead, 1 client (ms)": ("<=", 2.0),
    "64 clients / in-process scan_batch throughput": (">=", 0.8),
    "errors": ("<=", 0),
    "RSS growth over the 64-client run (MiB)": ("<=", 32.0),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m norefusal.server.bench", description=__doc__)
    p.add_argument("--data", type=Path, default=None, help="data directory (../shared/data)")
    p.add_argument("--sample", type=int, default=300, help="distinct inputs (default: 300)")
    p.add_argument("--requests", type=int, default=100_000, help="requests at 64 clients")
    p.add_argument("--small", type=int, default=2_000, help="requests per side at 1 client")
    p.add_argument("--rounds", type=int, default=5, help="interleaved in-process/service rounds")
    p.add_argument("--scan-threads", type=int, default=None, help="the server's scan threads")
    p.add_argument(
        "--model",
        default="default",
        help="model of both sides; 'keyword' scans in microseconds, so its overhead row is the "
        "service's own cost per request (default: %(default)s)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    return p


def _data_dir(given: Path | None) -> Path:
    for candidate in (given, Path("../shared/data"), _REPO.parent / "shared" / "data"):
        if candidate is not None and candidate.is_dir():
            return candidate
    raise SystemExit("No data directory: pass --data DIR (the shared refusal data).")


def _stats(latencies_s: Sequence[float], elapsed_s: float) -> dict[str, float]:
    ms = np.asarray(latencies_s) * 1000.0
    return {
        "requests": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "per_s": len(ms) / elapsed_s,
    }


# -- in process ----------------------------------------------------------------------------------


Pairs = list[tuple[str, str]]


def _scan_latency(scanner: NoRefusalScanner, sample: Pairs, n: int, offset: int) -> list[float]:
    latencies = []
    for i in range(offset, offset + n):
        t = time.perf_counter()
        scanner.scan(*sample[i % len(sample)])
        latencies.append(time.perf_counter() - t)
    return latencies


def _threaded(scanner: NoRefusalScanner, sample: Pairs, n: int, threads: int) -> dict[str, float]:
    latencies = []

    def one(i: int) -> None:
        t = time.perf_counter()
        scanner.scan(*sample[i % len(sample)])
        latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    return _stats(latencies, time.perf_counter() - start)


def _batches(scanner: NoRefusalScanner, sample: list[tuple[str, str]]) -> dict[str, Any]:
    """scan_batch throughput per batch size, and how far batching moves a score from alone."""
    alone = np.array([r.score for r in scanner.scan_batch(sample, batch_size=1)])
    t = scanner.threshold
    out = {}
    for size in (1, 4, 8, 16):
        start = time.perf_counter()
        scores = np.array([r.score for r in scanner.scan_batch(sample, batch_size=size)])
        elapsed = time.perf_counter() - start
        out[str(size)] = {
            "per_s": len(sample) / elapsed,
            "max_score_change": float(np.abs(scores - alone).max()),
            "verdicts_changed": int(((scores > t) != (alone > t)).sum()),
        }
    return out


# -- over loopback -------------------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found")


class _Load:
    """``clients`` keep-alive connections sending ``n`` scans, checked against ``expected``."""

    def __init__(self, port: int, bodies: list[bytes], expected: list[float]) -> None:
        self._port = port
        self._requests = [
            b"POST /v1/scan HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(b)}\r\n\r\n".encode()
            + b
            for b in bodies
        ]
        self._expected = expected

    async def run(self, clients: int, n: int, pid: int) -> dict[str, Any]:
        latencies: list[float] = []
        errors = {"status": 0, "mismatch": 0, "connection": 0}
        rss: list[tuple[int, float]] = [(0, _rss_mib(pid))]
        counter = iter(range(n))

        async def client() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
            try:
                for i in counter:
                    k = i % len(self._requests)
                    t = time.perf_counter()
                    writer.write(self._requests[k])
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    body = await reader.readexactly(length)
                    latencies.append(time.perf_counter() - t)
                    if not head.startswith(b"HTTP/1.1 200"):
                        errors["status"] += 1
                    elif json.loads(body)["score"] != self._expected[k]:
                        errors["mismatch"] += 1
            except (OSError, asyncio.IncompleteReadError):
                errors["connection"] += 1
            finally:
                writer.close()

        async def sample_rss() -> None:
            while True:
                await asyncio.sleep(1.0)
                rss.append((len(latencies), _rss_mib(pid)))

        sampler = asyncio.ensure_future(sample_rss())
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
        sampler.cancel()
        rss.append((len(latencies), _rss_mib(pid)))
        return {
            **_stats(latencies, elapsed),
            "errors": errors,
            "rss_mib": rss,
            "latencies": latencies,
            "elapsed_s": elapsed,
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(port: int, scan_threads: int | None, model: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "norefusal._cli", "serve", "--port", str(port)]
    command += ["--model", model]
    if scan_threads:
        command += ["--scan-threads", str(scan_threads)]
    env = {**os.environ, "NOREFUSAL_SERVE_ACCESS_LOG": "false"}
    env["NOREFUSAL_SERVE_LOG_LEVEL"] = "warning"
    env.pop("NOREFUSAL_SERVE_TOKENS", None)
    env.pop("NOREFUSAL_SERVE_TOKEN_FILE", None)
    proc = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("norefusal serve exited at startup.")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: bench\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("norefusal serve did not become ready within 120 s.")


def _remote_latency(url: str, sample: list[tuple[str, str]], n: int) -> dict[str, float]:
    latencies = []
    with RemoteScanner(url) as remote:
        start = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            remote.scan(*sample[i % len(sample)])
            latencies.append(time.perf_counter() - t)
        return _stats(latencies, time.perf_counter() - start)


def _measure(
    scanner: NoRefusalScanner,
    sample: list[tuple[str, str]],
    expected: list[float],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """In-process and loopback runs, interleaved in rounds so that both sides see the same
    machine load; then the long 64-client run for errors and RSS."""
    port = _free_port()
    proc = _start_server(port, args.scan_threads, args.model)
    try:
        bodies = [json.dumps({"prompt": p, "output": o}).encode() for p, o in sample]
        load = _Load(port, bodies, expected)
        asyncio.run(load.run(4, 200, proc.pid))  # warm-up: connections, allocator, caches
        rounds, per_round = args.rounds, max(1, args.small // args.rounds)
        seq: list[float] = []
        one: list[float] = []
        batch = {"texts": 0, "s": 0.0}
        many: dict[int, list[dict[str, Any]]] = {16: [], 64: []}
        for r in range(rounds):
            _progress(f"round {r + 1} of {rounds}: in process, then 1, 16 and 64 clients")
            seq += _scan_latency(scanner, sample, per_round, r * per_round)
            start = time.perf_counter()
            scanner.scan_batch(sample)
            batch["s"] += time.perf_counter() - start
            batch["texts"] += len(sample)
            one += asyncio.run(load.run(1, per_round, proc.pid))["latencies"]
            for clients in many:
                many[clients].append(asyncio.run(load.run(clients, per_round * 2, proc.pid)))
        in_process = {
            "scan, 1 thread": _stats(seq, sum(seq)),
            "scan_batch": {"requests": batch["texts"], "per_s": batch["texts"] / batch["s"]},
        }
        for threads in (16, 64):
            in_process[f"scan, {threads} threads"] = _threaded(scanner, sample, args.small, threads)
        loopback: dict[str, Any] = {"1 clients": {**_stats(one, sum(one)), "errors": _no_errors()}}
        for clients, runs in many.items():
            loopback[f"{clients} clients"] = _merge(runs)
        loopback["RemoteScanner, 1 client"] = _remote_latency(
            f"http://127.0.0.1:{port}", sample, args.small
        )
        _progress(f"the long run: {args.requests:,} requests from 64 clients")
        loopback["64 clients, long run"] = asyncio.run(load.run(64, args.requests, proc.pid))
        return {"in_process": in_process, "loopback": loopback}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _no_errors() -> dict[str, int]:
    return {"status": 0, "mismatch": 0, "connection": 0}


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [x for r in runs for x in r["latencies"]]
    errors = _no_errors()
    for r in runs:
        for k, v in r["errors"].items():
            errors[k] += v
    return {**_stats(latencies, sum(r["elapsed_s"] for r in runs)), "errors": errors}


# -- report --------------------------------------------------------------------------------------


def _figures(result: dict[str, Any]) -> dict[str, float]:
    inproc, service = result["in_process"], result["loopback"]
    long_run = service["64 clients, long run"]
    rss = long_run["rss_mib"]
    errors = sum(sum(s["errors"].values()) for s in service.values() if "errors" in s)
    return {
        "p50 overhead, 1 client (ms)": (
            service["1 clients"]["p50_ms"] - inproc["scan, 1 thread"]["p50_ms"]
        ),
        "64 clients / in-process scan_batch throughput": (
            service["64 clients"]["per_s"] / inproc["scan_batch"]["per_s"]
        ),
        "errors": errors,
        "RSS growth over the 64-client run (MiB)": rss[-1][1] - rss[0][1],
    }


def _progress(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _render(result: dict[str, Any]) -> str:
    lines = [_row(["run", "requests", "p50 ms", "p99 ms", "per s", "errors"])]
    lines.append("|---|---:|---:|---:|---:|---:|")
    for where in ("in_process", "loopback"):
        for name, s in result[where].items():
            errors = sum(s["errors"].values()) if "errors" in s else "-"
            label = name if where == "in_process" else f"service, {name}"
            p50, p99 = (f"{s[k]:.2f}" if k in s else "-" for k in ("p50_ms", "p99_ms"))
            cells = [label, f"{s['requests']:,}", p50, p99, f"{s['per_s']:.1f}", str(errors)]
            lines.append(_row(cells))
    lines += [
        "",
        _row(["texts per forward pass", "texts/s", "max score change", "verdicts changed"]),
    ]
    lines.append("|---:|---:|---:|---:|")
    for size, b in result["batch"].items():
        cells = [
            size,
            f"{b['per_s']:.1f}",
            f"{b['max_score_change']:.4f}",
            str(b["verdicts_changed"]),
        ]
        lines.append(_row(cells))
    rss = result["loopback"]["64 clients, long run"]["rss_mib"]
    lines += [
        "",
        f"Server RSS over the long 64-client run ({rss[-1][0]:,} requests): {rss[0][1]:.1f} MiB "
        f"at start, {max(r for _, r in rss):.1f} max, {rss[-1][1]:.1f} at the end.",
        "",
    ]
    lines += ["| target | goal | measured | result |", "|---|---|---:|---|"]
    for name, value in _figures(result).items():
        op, goal = TARGETS[name]
        ok = value <= goal if op == "<=" else value >= goal
        lines.append(f"| {name} | {op} {goal} | {value:.2f} | {'pass' if ok else 'FAIL'} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a Markdown report; returns 1 on a failed target with --check."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    # A background job ignores SIGINT: let SIGTERM unwind too, so the server subprocess stops.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    inputs = load_inputs(_data_dir(args.data), sample_size=args.sample, seed=0)
    sample = list(inputs.sample)
    random.Random(1).shuffle(sample)
    scanner = NoRefusalScanner(model=args.model)
    scanner.load()
    expected = [r.score for r in scanner.scan_batch(sample)]
    result: dict[str, Any] = {
        "model": args.model,
        "machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()},
        "sample": inputs.describe(),
    }
    _progress("in process: scan_batch at 1, 4, 8 and 16 texts per pass")
    result["batch"] = _batches(scanner, sample)
    result.update(_measure(scanner, sample, expected, args))
    result["machine"]["load_avg_end"] = os.getloadavg()
    report = _render(result)
    print(report)
    machine = result["machine"]
    print(f"\nload average at start {machine['load_avg_start']}, at end {machine['load_avg_end']}")
    if args.json is not None:
        for run in result["loopback"].values():
            run.pop("latencies", None)
        args.json.write_text(json.dumps(result, indent=1))
    failed = [n for n, v in _figures(result).items() if not _meets(n, v)]
    return 1 if args.check and failed else 0


def _meets(name: str, value: float) -> bool:
    op, goal = TARGETS[name]
    return value <= goal if op == "<=" else value >= goal


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
