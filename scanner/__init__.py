"""norefusal: detect when an LLM refused instead of answering.

>>> from norefusal import NoRefusalScanner
>>> sanitized, valid, risk = NoRefusalScanner().scan(prompt, output)
"""

from __future__ import annotations

import logging

from ._backends import Backend
from ._errors import (
    ConfigurationError,
    MissingDependencyError,
    ModelLoadError,
    NoRefusalError,
    RefusalDetected,
    ScannerError,
)
from ._presets import PRESETS
from ._remote import RemoteScanner
from ._result import ScanResult, Signal, risk_score
from ._scanner import NoRefusalScanner
from ._stream import StreamMonitor
from ._text import InputFormat, MatchType

__version__ = "0.1.0"

# A library logs; the application decides where to: without this, Python's last-resort handler
# would print norefusal's warnings to stderr of any app that has not configured logging.
logging.getLogger("norefusal").addHandler(logging.NullHandler())

__all__ = [
    "PRESETS",
    "Backend",
    "ConfigurationError",
    "InputFormat",
    "MatchType",
    "MissingDependencyError",
    "ModelLoadError",
    "NoRefusalError",
    "NoRefusalScanner",
    "RefusalDetected",
    "RemoteScanner",
    "ScanResult",
    "ScannerError",
    "Signal",
    "StreamMonitor",
    "__version__",
    "risk_score",
]
