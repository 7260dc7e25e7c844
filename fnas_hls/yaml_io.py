"""Reading YAML that a person wrote: safe loading, line numbers, and one clear error per fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fnas_hls.errors import FnasError

#: Key under which ``load_yaml`` records the 1-based line of each mapping.
LINE = "__line__"


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse ``path`` safely; every mapping gets a ``__line__`` key. Raises FnasError on any fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FnasError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FnasError(f"{path}: cannot read {what}: {exc}") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML ``text``; ``source`` names it in errors (``file:line: problem``)."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise FnasError(f"{source}{line}: malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise FnasError(f"{source}: malformed YAML: {exc}") from None


def strip_lines(value: Any) -> Any:
    """A copy of ``value`` without the ``__line__`` keys."""
    if isinstance(value, dict):
        return {k: strip_lines(v) for k, v in value.items() if k != LINE}
    if isinstance(value, list):
        return [strip_lines(v) for v in value]
    return value


def where(source: str, mapping: Any) -> str:
    """``source:line`` for a mapping loaded by ``load_yaml`` (just ``source`` when unknown)."""
    if isinstance(mapping, dict) and LINE in mapping:
        return f"{source}:{mapping[LINE]}"
    return source
