"""Loading policies from files, YAML text and mappings, with errors that name field and line.

The loaders validate into the model class they are given (``Policy``, whose ``from_file``,
``from_yaml``, ``from_dict`` and ``builtin`` call them), so this module never imports the
model: dependencies run one way, ``_model`` -> ``_loading``.

YAML goes through ``yaml.SafeLoader`` only: a tag that would construct a Python object is an
error, never code. ``${NAME}`` (or ``${NAME:-default}``; ``$${`` for a literal ``${``) is
replaced by an environment variable in exactly these string fields: ``scanner.model``,
``fallback_model``, ``replacement`` and ``retry_instruction``. Anywhere else it stays as text.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast, get_args

import yaml
from norefusal import ConfigurationError
from pydantic import BaseModel, ValidationError

__all__ = [
    "BUILTIN_POLICIES",
    "ENV_FIELDS",
    "PolicyError",
    "Problem",
    "builtin_policy",
    "policy_from_dict",
    "policy_from_file",
    "policy_from_yaml",
]

#: The policy model a loader validates into (``Policy``).
M = TypeVar("M", bound=BaseModel)

#: The policies shipped as ``policies/<name>.yaml``.
BUILTIN_POLICIES = ("monitor", "strict", "fallback-message", "retry-then-raise")

#: The fields where ``${ENV_VAR}`` is substituted, as paths into the mapping.
ENV_FIELDS: tuple[tuple[str, ...], ...] = (
    ("scanner", "model"),
    ("fallback_model",),
    ("replacement",),
    ("retry_instruction",),
)

_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_MAX_BYTES = 1_000_000
#: Problems listed in one error: a file with thousands of bad keys must not take minutes.
_MAX_PROBLEMS = 20
_TOO_DEEP = "nested too deeply to be a policy (policies are a few levels deep); check the input."


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy: the field (dotted path), what is wrong, and the line."""

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field or '(policy)'}: {self.message}"


class PolicyError(ConfigurationError):
    """A policy is invalid; ``problems`` lists each bad field, with its line when known.

    Attributes:
        problems: the :class:`Problem` list (at least one).
        source: the file or source name, if any.
    """

    def __init__(
        self, problems: list[Problem], *, source: str | None = None, message: str | None = None
    ) -> None:
        self.problems = problems
        self.source = source
        if message is None:
            where = f" in {source}" if source else ""
            lines = "\n".join(f"  {p}" for p in problems)
            message = (
                f"Invalid policy{where}:\n{lines}\nFix the field(s) above; "
                f"`norefusal policy schema` prints every field and its bounds."
            )
        super().__init__(message)


# -- YAML ------------------------------------------------------------------------------------


def policy_from_yaml(
    model: type[M], text: str, *, source: str | None = None, env: Mapping[str, str] | None = None
) -> M:
    """Parse YAML text safely and validate it as a ``model`` (a policy)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}.")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise PolicyError([_yaml_problem(exc, None)], source=source) from None
    except yaml.YAMLError as exc:
        raise PolicyError([Problem("", f"not valid YAML: {exc}")], source=source) from None
    except RecursionError:  # PyYAML composes recursively: [[[[...]]]] exhausts the stack
        raise PolicyError([Problem("", _TOO_DEEP)], source=source) from None
    if root is not None:
        duplicate = _find_duplicate(root, ())
        if duplicate is not None:
            raise PolicyError([duplicate], source=source)
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise PolicyError([_yaml_problem(exc, root)], source=source) from None
    except RecursionError:
        raise PolicyError([Problem("", _TOO_DEEP)], source=source) from None
    if not isinstance(data, dict):
        got = "an empty document" if data is None else f"a {_yaml_type(data)}"
        raise PolicyError(
            [Problem("", f"a policy must be a mapping of fields (key: value), got {got}.", 1)],
            source=source,
        )
    return _validate(model, data, env=env, root=root, source=source)


def _yaml_type(value: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _yaml_problem(exc: yaml.MarkedYAMLError, root: yaml.Node | None) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    field = _field_at(root, mark.index) if root is not None and mark is not None else ""
    if isinstance(exc, yaml.constructor.ConstructorError):
        tag = _TAG.search(str(exc.problem))
        what = f"the YAML tag {tag.group(1)!r}" if tag else "a YAML tag"
        message = (
            f"{what} is not allowed: policies are plain data (a safe loader never builds "
            "Python objects); write the value without the tag."
        )
    else:
        problem = exc.problem or "invalid YAML"
        message = f"not valid YAML: {problem}."
    return Problem(field, message, line)


_TAG = re.compile(r"tag '([^']+)'")


def _field_at(node: yaml.Node, index: int, path: tuple[str, ...] = ()) -> str:
    """The dotted path of the innermost mapping value that spans character ``index``."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.start_mark.index <= index <= value.end_mark.index:
                name = str(key.value)
                return _field_at(value, index, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            if item.start_mark.index <= index <= item.end_mark.index:
                return _field_at(item, index, (*path, str(i)))
    return ".".join(path)


def _find_duplicate(
    node: yaml.Node, path: tuple[str, ...], seen_nodes: set[int] | None = None
) -> Problem | None:
    """A key given twice, or a YAML alias (a node reached twice), as a problem."""
    seen_nodes = {id(node)} if seen_nodes is None else seen_nodes
    if isinstance(node, yaml.MappingNode):
        children = [((*path, str(k.value)), k, v) for k, v in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = [((*path, str(i)), item, item) for i, item in enumerate(node.value)]
    else:
        return None
    keys: set[str] = set()
    for child_path, where, child in children:
        field = ".".join(child_path)
        line = where.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            if child_path[-1] in keys:
                message = "given twice; YAML would silently keep only the last one. Remove one."
                return Problem(field, message, line)
            keys.add(child_path[-1])
        if id(child) in seen_nodes:
            # Aliases would let a small file expand into a huge policy ("billion laughs").
            message = "YAML anchors and aliases are not supported in policies; write it out."
            return Problem(field, message, line)
        seen_nodes.add(id(child))
        found = _find_duplicate(child, child_path, seen_nodes)
        if found is not None:
            return found
    return None


def _line_of(root: yaml.Node | None, loc: tuple[str | int, ...], *, key: bool) -> int | None:
    """The 1-based line of the node at ``loc`` (its key's line when ``key``), or its parent."""
    node = root
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if str(k.value) == str(part):
                    line = (k if key else v).start_mark.line + 1
                    node = v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


# -- mappings --------------------------------------------------------------------------------


def policy_from_dict(
    model: type[M], data: Mapping[str, Any], *, env: Mapping[str, str] | None = None
) -> M:
    """Validate a mapping as a ``model``, substituting ``${ENV_VAR}`` where documented."""
    if not isinstance(data, Mapping):
        raise PolicyError(
            [Problem("", f"a policy must be a mapping of fields, got {type(data).__name__}.")]
        )
    return _validate(model, data, env=env, root=None, source=None)


def _substitute(
    data: Mapping[str, Any], env: Mapping[str, str], root: yaml.Node | None
) -> dict[str, Any]:
    out = dict(data)
    problems: list[Problem] = []
    for path in ENV_FIELDS:
        parent: Any = out
        for part in path[:-1]:
            child = parent.get(part) if isinstance(parent, dict) else None
            if not isinstance(child, Mapping):
                parent = None
                break
            parent[part] = child = dict(child)
            parent = child
        if not isinstance(parent, dict) or not isinstance(parent.get(path[-1]), str):
            continue
        field = ".".join(path)

        def expand(match: re.Match[str], field: str = field, path: tuple[str, ...] = path) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(
                Problem(
                    field,
                    f"environment variable {name!r} is not set; set it, or write "
                    f"${{{name}:-default}} for a default.",
                    _line_of(root, path, key=False),
                )
            )
            return ""

        parent[path[-1]] = _ENV_REF.sub(expand, parent[path[-1]])
    if problems:
        raise PolicyError(problems)
    return out


def _validate(
    model: type[M],
    data: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None,
    root: yaml.Node | None,
    source: str | None,
) -> M:
    try:
        expanded = _substitute(data, os.environ if env is None else env, root)
    except PolicyError as exc:
        raise PolicyError(exc.problems, source=source) from None
    try:
        return model.model_validate(expanded)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        try:
            # Finding a problem's line walks the document: list a bounded number of them.
            problems = [_problem(model, error, root) for error in errors[:_MAX_PROBLEMS]]
        except RecursionError:  # showing a deeply nested value
            problems = [Problem("", _TOO_DEEP)]
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        if len(errors) > _MAX_PROBLEMS:
            more = len(errors) - _MAX_PROBLEMS
            problems.append(Problem("", f"... and {more} more problem(s) like these."))
    except RecursionError:
        problems = [Problem("", _TOO_DEEP)]
    raise PolicyError(problems, source=source) from None


_ENUM_REPR = re.compile(r"<\w+\.\w+: ('[^']*')>")  # <Action.FLAG: 'flag'> -> 'flag'
_FIELD_PREFIX = re.compile(r"^Value error, ([a-z_]+): (.*)$", re.DOTALL)


def _problem(model: type[BaseModel], error: Any, root: yaml.Node | None) -> Problem:
    loc = tuple(p for p in error["loc"] if not _is_union_tag(p))
    kind = error["type"]
    message = _ENUM_REPR.sub(r"\1", str(error["msg"]))
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        fields = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(name, fields, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return Problem(
            ".".join(map(str, loc)),
            f"unknown field {name!r}.{hint} Allowed here: {', '.join(fields)}.",
            _line_of(root, loc, key=True),
        )
    if not loc:
        matched = _FIELD_PREFIX.match(message)
        if matched:
            field, text = matched.group(1), matched.group(2)
            line = _line_of(root, (field,), key=True) or _line_of(root, ("action",), key=True)
            return Problem(field, text, line)
    if kind.startswith(("value_error", "assertion_error")) and message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    shown = _short(error.get("input"))
    if kind != "missing" and not isinstance(error.get("input"), (dict, list)):
        message = message if shown in message else f"{message} (got {shown})"
    return Problem(".".join(map(str, loc)), message, _line_of(root, loc, key=False))


def _is_union_tag(part: object) -> bool:
    # pydantic adds the union member to a location, e.g. ("allowlist", 0, "str").
    return part in ("text", "pattern")


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        nested = _model_in(info.annotation) if info else None
        if nested is not None:
            model = nested
    return sorted(model.model_fields)


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The model a field holds, itself or inside ``X | None``, ``tuple[X, ...]``, ``Annotated``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- files and built-ins ---------------------------------------------------------------------


def policy_from_file(
    model: type[M], path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> M:
    """Load a YAML or JSON policy file as a ``model``."""
    file = Path(path)
    try:
        if file.stat().st_size > _MAX_BYTES:
            raise PolicyError(
                [Problem("", f"the file is larger than {_MAX_BYTES} bytes; is it a policy?")],
                source=str(file),
            )
        text = file.read_text(encoding="utf-8")
    except OSError as exc:  # the wording of every norefusal command for an unreadable file
        reason = exc.strerror or str(exc)
        raise PolicyError(
            [Problem("", f"cannot read the file: {reason}.")],
            source=str(file),
            message=f"Cannot read {file}: {reason}.",
        ) from None
    except UnicodeDecodeError:
        raise PolicyError(
            [Problem("", "not UTF-8 text.")], source=str(file), message=f"{file}: not UTF-8 text."
        ) from None
    return policy_from_yaml(model, text, source=str(file), env=env)


def builtin_policy(model: type[M], name: str) -> M:
    """One of :data:`BUILTIN_POLICIES` as a ``model``, loaded once from the file shipped."""
    return cast(M, _builtin(model, name))  # cached per model class: the type asked for


@functools.cache
def _builtin(model: type[BaseModel], name: str) -> BaseModel:
    if name not in BUILTIN_POLICIES:
        close = difflib.get_close_matches(str(name), BUILTIN_POLICIES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(
            f"There is no built-in policy {name!r}; choose one of "
            f"{', '.join(BUILTIN_POLICIES)}, or load your own with Policy.from_file().{hint}"
        )
    text = resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return policy_from_yaml(model, text, source=f"built-in policy {name!r}", env={})
