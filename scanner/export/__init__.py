"""``norefusal export``: a Hugging Face classifier as an ONNX directory the ``onnx`` backend loads.

Tooling, not runtime: it needs the ``onnx`` extra (torch, transformers, onnx), imported when an
export runs. Its own subpackage rather than part of :mod:`norefusal.training`, because exporting
serves anyone who wants a hub model on ONNX Runtime, with no training involved; the training
recipe uses it for its last step.
"""

from __future__ import annotations

from ._onnx import ExportError, export_onnx, file_sha256, main, write_config

__all__ = ["ExportError", "export_onnx", "file_sha256", "main", "write_config"]
