"""``norefusal serve``: refusal detection as an HTTP service (the ``server`` extra).

    >>> from norefusal.server import ServeSettings, create_app
    >>> app = create_app(ServeSettings(threshold=0.7))   # an ASGI app: uvicorn, Ray Serve, ...

The core never imports this package; it needs ``pip install "norefusal[server]"``.
"""

from __future__ import annotations

from .._errors import MissingDependencyError

try:
    import fastapi  # noqa: F401
    import prometheus_client  # noqa: F401
    import pydantic_settings  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - the dev extra installs it
    raise MissingDependencyError("norefusal.server", "server") from exc

from ._app import create_app
from ._settings import ServeSettings, load_settings

__all__ = ["ServeSettings", "create_app", "load_settings"]
