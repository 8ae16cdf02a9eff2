"""The public surface: ``norefusal.__all__`` is exactly what ``__init__`` re-exports."""

from __future__ import annotations
import __future__

import ast
import importlib
import pkgutil
import types
from pathlib import Path

import norefusal
import pytest
from norefusal import (
    ConfigurationError,
    MissingDependencyError,
    ModelLoadError,
    NoRefusalError,
    RefusalDetected,
    ScannerError,
    ScanResult,
)

INIT = Path(norefusal.__file__)


def _reexported_names() -> set[str]:
    """Names ``__init__.py`` imports from its private modules, plus ``__version__``."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Assign):
            names.update(
                t.id for t in node.targets if isinstance(t, ast.Name) and t.id != "__all__"
            )
    return names


def test_all_is_exactly_the_public_surface() -> None:
    assert len(norefusal.__all__) == len(set(norefusal.__all__))
    assert set(norefusal.__all__) == _reexported_names()
    # Every other public attribute is a subpackage (or the __future__ feature flag).
    public = {
        name
        for name, value in vars(norefusal).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and value is not __future__.annotations
    }
    assert public == set(norefusal.__all__) - {"__version__"}


def test_every_public_name_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from norefusal import *", namespace)
    for name in norefusal.__all__:
        assert getattr(norefusal, name) is not None
        assert namespace[name] is getattr(norefusal, name)


@pytest.mark.parametrize(
    "module",
    sorted(
        m.name
        for m in pkgutil.walk_packages(norefusal.__path__, "norefusal.")
        if m.name.rsplit(".", 1)[-1].startswith("_")
        and m.name.split(".")[1] in {"_backends", "_scanner", "_result", "_text", "_encoding",
                                     "_visible", "_presets", "_labels", "_artifact", "_stream",
                                     "_errors"}
    ),
)  # fmt: skip
def test_core_modules_declare_all(module: str) -> None:
    """Each private core module lists its exports, and each listed name exists."""
    mod = importlib.import_module(module)
    assert isinstance(mod.__all__, list)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


def test_exception_tree() -> None:
    for cls in (ConfigurationError, ModelLoadError, ScannerError, RefusalDetected):
        assert issubclass(cls, NoRefusalError)
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(MissingDependencyError, ConfigurationError)
    assert issubclass(MissingDependencyError, ImportError)


def test_refusal_detected_carries_the_result_but_never_the_text() -> None:
    result = ScanResult("secret output", score=0.9, threshold=0.5)
    error = RefusalDetected(result, prompt="secret prompt", output="secret output", policy="strict")
    assert (error.result, error.prompt, error.output, error.policy) == (
        result,
        "secret prompt",
        "secret output",
        "strict",
    )
    assert "secret" not in str(error)
    assert "'strict'" in str(error)


def test_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    assert norefusal.__version__ == version("norefusal")
