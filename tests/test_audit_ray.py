"""The Ray engine on a local Ray (2 CPUs): the local engine's output, row for row, through failures.

Few tests, each one Ray job: starting actors dominates their time.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _audit_rows import pair_rows, write_jsonl, write_parquet
from norefusal import ConfigurationError
from norefusal._cli import main as norefusal_main
from norefusal.audit import RayOptions, ShapeError, audit

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

# Fractional CPUs: two actors of 1 CPU each on 2 CPUs would leave none for the read tasks.
TWO_ACTORS = RayOptions(actors=2, cpus_per_actor=0.5)


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def same_output(a: Path, b: Path) -> None:
    """Two audit folders hold the same results, errors and counts."""
    left = pq.read_table(a / "results.parquet")
    right = pq.read_table(b / "results.parquet")
    assert left.num_rows == right.num_rows
    assert left.equals(right)
    assert (a / "errors.jsonl").read_text() == (b / "errors.jsonl").read_text()
    summaries = [json.loads((d / "summary.json").read_text()) for d in (a, b)]
    for key in ("outputs", "refusals", "rate", "ci95", "errors", "signals", "by"):
        assert summaries[0][key] == summaries[1][key], key


def test_20000_rows_on_ray_equal_the_local_engine_row_for_row(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_jsonl(logs / "a.jsonl", pair_rows(12_000, seed=1), bad_every=500)
    write_parquet(logs / "b.parquet", pair_rows(8_000, seed=2, start=12_000))
    common = [
        str(logs),
        "--model",
        "keyword",
        "--keep",
        "id",
        "--group-by",
        "model,route,day",
        "--batch-size",
        "1000",
    ]
    assert norefusal_main(["audit", *common, "--out", str(tmp_path / "local")]) == 0
    ray_args = ["--engine", "ray", "--actors", "2", "--cpus-per-actor", "0.5"]
    assert norefusal_main(["audit", *common, *ray_args, "--out", str(tmp_path / "ray")]) == 0
    same_output(tmp_path / "local", tmp_path / "ray")
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["outputs"] == 20_000
    assert summary["errors"] == 12_000 // 500  # the bad lines, and the job went on
    assert summary["engine"] == "ray"


def _scoring_actors() -> list[tuple[int, str]]:
    """(pid, title) of the processes of Ray Data's scoring actors on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if title.startswith("ray::MapWorker(MapBatches(Scorer))"):
            found.append((int(entry.name), title))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds actors through /proc")
def test_an_actor_killed_mid_job_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """The embedded default model, two actors; one is killed (SIGKILL) after the first batch."""
    rows = pair_rows(300, seed=3)
    path = write_jsonl(tmp_path / "logs.jsonl", rows)
    killed: list[dict[str, Any]] = []
    done = [0]

    def kill_one(n: int) -> None:
        done[0] += n
        if killed:
            return
        actors = _scoring_actors()
        busy = [a for a in actors if a[1].endswith(".submit")] or actors
        assert busy, "no scoring actor process found"
        os.kill(busy[0][0], signal.SIGKILL)
        killed.append({"pid": busy[0][0], "title": busy[0][1], "rows_done": done[0]})

    options: dict[str, Any] = {"keep": ["id"], "batch_size": 20}
    audit([path], out=tmp_path / "ray", engine="ray", ray=TWO_ACTORS, progress=kill_one, **options)
    assert len(killed) == 1
    assert killed[0]["rows_done"] < len(rows)  # killed mid-job
    audit([path], out=tmp_path / "local", **options)
    same_output(tmp_path / "local", tmp_path / "ray")
    ids = pq.read_table(tmp_path / "ray" / "results.parquet").column("id").to_pylist()
    assert ids == [r["id"] for r in rows]  # none lost, none twice, in order


def test_mixed_shapes_fail_on_ray_naming_the_file_and_line(tmp_path: Path) -> None:
    rows: list[Any] = [*pair_rows(5), {"messages": [{"role": "assistant", "content": "x"}]}]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    with pytest.raises(ShapeError, match=r"^\S*mixed\.jsonl, line 6: a 'messages' row in an "):
        audit(
            [path],
            out=tmp_path / "out",
            engine="ray",
            scanner={"model": "keyword"},
            ray=RayOptions(actors=1, cpus_per_actor=0.5),
        )
    assert list((tmp_path / "out").iterdir()) == []


def test_an_actor_pool_that_leaves_no_cpu_to_read_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", pair_rows(5))
    with pytest.raises(ConfigurationError, match="fractional --cpus-per-actor"):
        audit(
            [path],
            out=tmp_path / "out",
            engine="ray",
            scanner={"model": "keyword"},
            ray=RayOptions(actors=2, cpus_per_actor=1.0),
        )
