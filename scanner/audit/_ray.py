"""The Ray Data engine: read tasks per file, a pool of scoring actors, results in input order.

The plan is ``from_items(files) -> map_batches(read) -> map_batches(Scorer, ActorPoolStrategy)``.
Read tasks run :func:`read_source`, the local engine's reader; each actor builds one
:class:`Scorer`, so the model loads once per actor. The dataset preserves order, and the
driver writes the batches as they come through the same :class:`Sink` as the local engine: the
output is the local engine's, row for row. The driver handles only result tables (no text),
a few hundred bytes a row, which a single writer sustains far past what a cluster scores.

An actor that dies (a node lost, a process killed) is restarted and its batch retried (Ray
Data's defaults for actor pools: ``max_restarts=-1``, ``max_task_retries=-1``): a batch's
output counts only once it is complete, so nothing is lost or written twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .._errors import ConfigurationError, MissingDependencyError
from ._read import ReadSpec, read_source
from ._score import Scorer
from ._shapes import RequestIndex, ShapeError
from ._sink import Sink
from ._sources import FileFormat, Source

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["READ_CPUS", "RayOptions", "run_ray"]

log = logging.getLogger("norefusal.audit")

#: CPUs each read task reserves, and that the actor pool must leave free: with none left, read
#: tasks would never be scheduled and the job would hang instead of failing. One CPU, Ray
#: Data's default, also lets Ray fuse the read with the repartition after it into one task.
READ_CPUS = 1.0


@dataclass(frozen=True)
class RayOptions:
    """How the Ray engine runs.

    Attributes:
        address: the cluster to join (``"ray://head:10001"``, ``"auto"``); ``None`` starts a
            local Ray, or joins the one this process already started or ``RAY_ADDRESS`` names.
        actors: scoring actors; ``None`` fills the cluster's CPUs (or GPUs) at the start.
        cpus_per_actor: CPUs each actor reserves (fractions allowed).
        gpus_per_actor: GPUs each actor reserves; a model on a GPU also needs
            ``device="cuda"`` (the ONNX default model runs on the CPU).
        progress_bars: Ray Data's own progress bars (on a terminal).
    """

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    progress_bars: bool = False


def _read_files(batch: pa.Table, spec: ReadSpec, requests: Any) -> Iterator[pa.Table]:
    import ray

    index: RequestIndex | None = ray.get(requests) if requests is not None else None
    for uri, fmt in zip(
        batch.column("uri").to_pylist(), batch.column("format").to_pylist(), strict=True
    ):
        yield from read_source(Source(uri, FileFormat(fmt)), spec, index)


def _actors(ray: Any, options: RayOptions) -> int:
    resources = ray.cluster_resources()
    cpus = float(resources.get("CPU", 0.0))
    gpus = float(resources.get("GPU", 0.0))
    actors = options.actors
    if actors is None:
        fits = int((cpus - READ_CPUS) // options.cpus_per_actor) if options.cpus_per_actor else 1
        if options.gpus_per_actor:
            fits = min(fits, int(gpus // options.gpus_per_actor))
        actors = max(1, fits)
    needed = actors * options.cpus_per_actor + READ_CPUS
    short = needed > cpus or actors * options.gpus_per_actor > gpus
    if short:
        message = (
            f"{actors} actor(s) x {options.cpus_per_actor} CPU and {options.gpus_per_actor} "
            f"GPU, plus {READ_CPUS:g} CPU to read, need more than the cluster's {cpus:g} CPU and "
            f"{gpus:g} GPU: use fewer actors or fractional --cpus-per-actor."
        )
        if options.address is None:  # a local Ray never grows: this job would wait forever
            raise ConfigurationError(message)
        log.warning("%s Waiting for the cluster to scale up.", message)
    return actors


def _shape_error(exc: BaseException) -> ShapeError | None:
    """The :class:`ShapeError` a read task raised, through Ray's wrapping, if that is the cause."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ShapeError):
            # Ray's wrapper subclasses the original type; rebuild it with the bare message.
            return ShapeError(str(current.args[0]) if current.args else str(current))
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else current.__cause__
    return None


def run_ray(
    sources: list[Source],
    spec: ReadSpec,
    scanner_options: Mapping[str, Any],
    sink: Sink,
    *,
    requests: RequestIndex | None,
    options: RayOptions,
    progress: Callable[[int], object] | None = None,
) -> None:
    """Score every row of ``sources`` on Ray, writing to ``sink`` in input order."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError("The Ray audit engine", "ray") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address)
    try:
        actors = _actors(ray, options)
        requests_ref = ray.put(requests) if requests is not None else None
        files = [{"uri": s.uri, "format": s.format.value} for s in sources]
        ds: ray.data.Dataset = ray.data.from_items(files, override_num_blocks=len(files))
        ds = ds.map_batches(
            functools.partial(_read_files, spec=spec, requests=requests_ref),
            batch_size=1,
            batch_format="pyarrow",
            num_cpus=READ_CPUS,
        )
        # Ray Data merges a task's tables into blocks of up to 128 MiB: without this, a file
        # would reach the actors as one block, scored by one actor in one call.
        ds = ds.repartition(target_num_rows_per_block=spec.batch_rows)
        ds = ds.map_batches(
            Scorer,
            fn_constructor_kwargs={"scanner_options": dict(scanner_options)},
            batch_size=spec.batch_rows,  # rows per actor call: the unit retried on a failure
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=options.cpus_per_actor,
            num_gpus=options.gpus_per_actor or None,
        )
        ds.context.execution_options.preserve_order = True
        ds.context.enable_progress_bars = options.progress_bars
        try:
            for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                table = cast("pa.Table", batch)
                sink.add(table)
                if progress is not None:
                    progress(table.num_rows)
        except Exception as exc:
            shape_error = _shape_error(exc)
            if shape_error is not None:
                raise shape_error from None
            raise
    finally:
        if started:
            ray.shutdown()
