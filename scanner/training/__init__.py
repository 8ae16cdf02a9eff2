"""The training recipe of the embedded default model (needs ``pip install "norefusal[train]"``).

Entry points for the CLI: :func:`main` (``norefusal train``). Data loading, license gating
and the held-out split live in :mod:`._data` and need no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``norefusal train --data DIR --out DIR [--seed N] [--eval-only]``."""
    from ._train import main as _main

    return _main(argv)
