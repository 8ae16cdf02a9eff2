"""Input files: listing local paths, folders and URLs, and reading them as lines or Parquet batches.

Every path goes through a pyarrow filesystem, so ``s3://``, ``gs://``, ``hdfs://`` and
``file://`` URLs read the same way as local paths, with the credentials pyarrow finds in the
environment. JSON Lines files may be compressed (``.gz``, ``.bz2``, ``.zst``, ``.lz4``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

__all__ = ["FileFormat", "Source", "iter_lines", "iter_parquet", "list_sources"]

_COMPRESSION = (".gz", ".bz2", ".zst", ".lz4")
_JSONL = (".jsonl", ".ndjson", ".json")
_PARQUET = (".parquet", ".pq")
# Bytes read at a time; lines are split here, as compressed streams cannot read lines. Small
# enough that a truncated archive loses little before its error.
_BLOCK = 1 << 16


class FileFormat(str, enum.Enum):
    JSONL = "jsonl"
    PARQUET = "parquet"


@dataclass(frozen=True)
class Source:
    """One input file.

    Attributes:
        uri: what the results call it: the local path (as given, joined with the name found in
            a folder) or the URL.
        format: JSON Lines or Parquet, from the file name.
    """

    uri: str
    format: FileFormat

    def open(self) -> tuple[pafs.FileSystem, str]:
        """The filesystem that holds this file and its path there."""
        return _filesystem(self.uri)


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    import pyarrow.fs as pafs

    if "://" in uri:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, str(path)
    return pafs.LocalFileSystem(), str(Path(uri).resolve())


def _format_of(name: str) -> FileFormat | None:
    lowered = name.lower()
    for suffix in _COMPRESSION:
        if lowered.endswith(suffix):
            lowered = lowered[: -len(suffix)]
            break
    if lowered.endswith(_JSONL):
        return FileFormat.JSONL
    if lowered.endswith(_PARQUET) and lowered == name.lower():  # Parquet compresses inside
        return FileFormat.PARQUET
    return None


def list_sources(inputs: Sequence[str]) -> list[Source]:
    """Expand files and folders into the input files, in a stable order.

    A folder contributes every JSON Lines and Parquet file under it (recursively, sorted by
    path; hidden files and names starting with ``_``, such as ``_SUCCESS``, are skipped). The
    inputs keep the order they were given in.

    Raises:
        FileNotFoundError: an input does not exist.
        ValueError: a file given by name is neither JSON Lines nor Parquet, or a folder holds
            no input file.
    """
    import pyarrow.fs as pafs

    sources: list[Source] = []
    for given in inputs:
        fs, path = _filesystem(given)
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"{given}: no such file or folder.")
        if info.type == pafs.FileType.Directory:
            found = []
            for entry in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
                relative = entry.path[len(path.rstrip("/")) + 1 :]
                hidden = any(part.startswith((".", "_")) for part in relative.split("/"))
                fmt = _format_of(entry.base_name)
                if entry.type == pafs.FileType.File and fmt is not None and not hidden:
                    found.append((relative, fmt))
            if not found:
                raise ValueError(f"{given}: the folder holds no JSON Lines or Parquet file.")
            base = given.rstrip("/")
            sources.extend(Source(f"{base}/{rel}", fmt) for rel, fmt in sorted(found))
            continue
        fmt = _format_of(info.base_name)
        if fmt is None:
            raise ValueError(
                f"{given}: not a JSON Lines (.jsonl, .ndjson, .json, optionally compressed) or "
                "Parquet (.parquet) file."
            )
        sources.append(Source(given, fmt))
    return sources


def iter_lines(source: Source) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, line)`` for each line of a JSON Lines file, blank ones included.

    Lines are bytes without their newline; numbers start at 1, as an editor shows them.
    """
    fs, path = source.open()
    number = 0
    with fs.open_input_stream(path, compression="detect") as stream:
        rest = b""
        while True:
            block = stream.read(_BLOCK)
            if not block:
                break
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for line in lines:
                number += 1
                yield number, line
        if rest:
            yield number + 1, rest


def iter_parquet(source: Source, *, batch_rows: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield ``(number of its first row, batch)`` through a Parquet file, ``batch_rows`` a time."""
    import pyarrow.parquet as pq

    fs, path = source.open()
    with fs.open_input_file(path) as handle:
        first = 1
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=batch_rows):
            yield first, batch
            first += batch.num_rows
