"""YAML loading that remembers where every value came from.

Inventories and playbooks are edited by hand, so a validation error must say *where*: file, line and
field. ``load_yaml`` returns plain ``dict``/``list`` subclasses (``Located``) that also carry the line
of each key and item, so validators can point at the exact line without a second parse.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from toolkit.errors import ConfigError


class LocatedDict(dict):  # type: ignore[type-arg]
    """A mapping from YAML. ``line`` is where it starts; ``key_lines[key]`` where each key sits."""

    line: int = 0
    key_lines: dict[Any, int]
    value_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        """The line of ``key``'s value (falls back to the key's line, then the mapping's)."""
        return self.value_lines.get(key) or self.key_lines.get(key) or self.line


class LocatedList(list):  # type: ignore[type-arg]
    """A sequence from YAML. ``line`` is where it starts; ``item_lines[i]`` where each item sits."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class TaggedValue:
    """A value with a YAML tag iisfleet does not understand (e.g. Ansible's ``!vault``)."""

    def __init__(self, tag: str, line: int) -> None:
        self.tag = tag
        self.line = line

    def __repr__(self) -> str:  # never the (possibly encrypted) payload
        return f"<{self.tag} value>"


def line_of(container: Any, key: Any, default: int = 0) -> int:
    """The source line of ``container[key]`` when the container came from ``load_yaml``."""
    finder: Callable[[Any], int] | None = getattr(container, "line_of", None)
    if finder is None:
        return default
    try:
        return finder(key) or default
    except (TypeError, KeyError):
        return default


def key_line(container: Any, key: Any, default: int = 0) -> int:
    """The source line of the key ``key`` itself (for "unknown key" errors)."""
    lines = getattr(container, "key_lines", None)
    if not lines:
        return default or start_line(container)
    return lines.get(key) or default or start_line(container)


def start_line(value: Any, default: int = 0) -> int:
    return int(getattr(value, "line", 0) or default)


# libyaml's parser when PyYAML was built with it (about 5x faster on a 2000-host inventory); the
# constructors below are the same either way, and both report marks (line numbers) on every node.
_BaseSafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LocatingLoader(_BaseSafeLoader):  # type: ignore[misc]
    """SafeLoader that builds ``LocatedDict``/``LocatedList`` with 1-based line numbers."""


def _construct_mapping(loader: _LocatingLoader, node: yaml.MappingNode) -> LocatedDict:
    # Keys written in this mapping itself (not pulled in by a `<<: *anchor` merge): only these may not
    # repeat; a merged key is meant to be overridden.
    own_key_nodes = {id(key) for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"}
    loader.flatten_mapping(node)
    own_keys: set[Any] = set()
    result = LocatedDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.value_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            ) from None
        if id(key_node) in own_key_nodes:
            if key in own_keys:
                # Silent "last one wins" hides typos in hand-edited files; say which line repeats it.
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            own_keys.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
        result.value_lines[key] = value_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LocatingLoader, node: yaml.SequenceNode) -> LocatedList:
    result = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _construct_unknown_tag(loader: _LocatingLoader, suffix: str, node: yaml.Node) -> TaggedValue:
    return TaggedValue(node.tag, node.start_mark.line + 1)


_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_LocatingLoader.add_multi_constructor("!", _construct_unknown_tag)


def parse_yaml(text: str, path: str, *, error: type[ConfigError] = ConfigError) -> Any:
    """Parse YAML text; a syntax error becomes ``error`` naming ``path`` and the line."""
    try:
        return yaml.load(text, Loader=_LocatingLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise error(f"invalid YAML: {problem}", path=path, line=line) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        line = text.count("\n", 0, exc.position) + 1
        character = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise error(f"invalid YAML: unacceptable character {character}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", path=path) from None


def read_text_file(path: Path, *, error: type[ConfigError] = ConfigError, what: str = "file") -> str:
    """A text file's content (UTF-8, BOM tolerated); unreadable or not UTF-8: ``error`` naming ``what``."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}", path=str(path)) from None
    except UnicodeDecodeError:
        raise error(f"{what} is not UTF-8 text", path=str(path)) from None


def load_yaml(path: Path, *, error: type[ConfigError] = ConfigError) -> Any:
    """Read and parse one YAML file (UTF-8, BOM tolerated)."""
    return parse_yaml(read_text_file(path, error=error), str(path), error=error)
