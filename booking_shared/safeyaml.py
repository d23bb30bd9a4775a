"""Reads the repository's YAML files (stack files, Pulumi.yaml, suppressions.yaml) within limits.

`yaml.safe_load` alone builds no objects from tags, but it keeps the last of two equal keys
(so a second `booking:domain:` silently wins over the one a reviewer reads), expands aliases
without bound once the data is serialized (a 2 KB "billion laughs" file takes gigabytes) and turns
an unquoted `2026-10-01` into a `datetime.date`. The Pulumi CLI (Go, yaml.v3) refuses duplicate
keys and excessive aliasing, so this loader does too, before anything is built:

- files larger than a caller's cap, or not regular files, are refused unread;
- a key set twice in one mapping is refused, naming the key and both lines;
- aliases may be reused, but the document they expand to is capped, and recursive ones refused;
- scalars whose YAML type the Pulumi CLI reads differently (dates, timestamps, `!!binary`,
  `!!set`, YAML 1.1 spellings such as `yes` or `0755`) are returned as `TypedScalar`s with their
  path and line, so a stack-file reader can ask for quotes instead of guessing. Timestamps are
  built as their source text, never as date objects.

This module imports only PyYAML and the standard library: the policy pack uses it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from booking_shared.errors import InputError

# The largest document (every value counted once per alias that reaches it) a file may expand to.
# A stack with 1,200 tenants is about 10,000 values; a "billion laughs" file is 10^9.
MAX_VALUES = 100_000

_CORE = "tag:yaml.org,2002:"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# The plain spellings yaml.v3 (YAML 1.2) and PyYAML (YAML 1.1) read as the same number or boolean.
_SAME_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_SAME_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
_SAME_BOOL = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
# Plain text to PyYAML but a number to yaml.v3: an exponent without a sign or without a dot (`1e5`,
# `1.5e3`, `.5e3`; PyYAML's floats need both) and `0o17` (an ID like 12e45... would be mangled).
_YAML12_ONLY_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+|0o[0-7]+")


class YamlError(InputError):
    """A YAML file cannot be read safely; each problem names a line where it can."""

    def __init__(self, name: str, problems: list[str]) -> None:
        self.name, self.problems = name, problems
        super().__init__(f"{name}: " + "; ".join(problems))


@dataclass(frozen=True)
class TypedScalar:
    """A value YAML reads as something other than text, e.g. an unquoted date."""

    path: tuple[str | int, ...]
    line: int
    kind: str  # "a date", "a date and time", "binary data (!!binary)", ...
    text: str  # the source text (never print it for a secret key)


@dataclass(frozen=True)
class Document:
    data: Any
    typed: list[TypedScalar]


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds timestamps as their source text (see the module docstring)."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor(f"{_CORE}timestamp", _timestamp_as_text)


def load(path: Path, *, max_bytes: int) -> Document:
    """Read `path` (at most `max_bytes`) into data plus its typed scalars; raises `YamlError`."""
    try:
        if not path.is_file():
            raise YamlError(path.name, ["not a regular file"])
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise YamlError(path.name, [f"cannot be read: {exc.strerror or exc}"]) from exc
    if len(raw) > max_bytes:
        raise YamlError(path.name, [f"is larger than {max_bytes:,} bytes, the limit for this file; "
                                    "a file this size is a mistake or an attack"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(path.name, [f"is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
                                    "save it as UTF-8"]) from exc
    return loads(text, path.name)


def loads(text: str, name: str) -> Document:
    """As `load`, for text already read; `name` is used in messages."""
    loader = _Loader(text)
    loader.name = name  # PyYAML's marks would say "<unicode string>"
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, [])
        _check_structure(node, name)
        typed = list(_typed_scalars(node))
        return Document(loader.construct_document(node), typed)
    except yaml.YAMLError as exc:
        raise YamlError(name, [f"not valid YAML: {exc}"]) from exc
    except RecursionError as exc:
        raise YamlError(name, ["nested too deeply to be a configuration file"]) from exc
    finally:
        loader.dispose()


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _check_structure(root: Node, name: str) -> None:
    """Duplicate keys, recursive aliases and the expanded size, from the node graph (aliases shared)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    duplicates: list[str] = []
    pending: list[tuple[Node, bool]] = [(root, False)]
    reached: set[int] = set()
    aliased = False
    # Iterative post-order walk: each distinct node is sized once, so the walk itself is linear in
    # the file even when aliases would expand it a billion times.
    while pending:
        node, finished = pending.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_VALUES:
                if aliased:
                    raise YamlError(name, [f"line {node.start_mark.line + 1}: aliases expand this document to more "
                                           f"than {MAX_VALUES:,} values; write the values out instead of "
                                           "nesting aliases"])
                raise YamlError(name, [f"line {node.start_mark.line + 1}: this document holds more than "
                                       f"{MAX_VALUES:,} values, far more than any stack configuration needs; a "
                                       "file this large is a mistake"])
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlError(name, [f"line {node.start_mark.line + 1}: an alias refers to a value that contains "
                                   "it (a recursive alias); write the value out"])
        open_nodes.add(key)
        pending.append((node, True))
        if isinstance(node, MappingNode):
            duplicates += _duplicate_keys(node)
        for child in _children(node):
            # A node reached from two places is an alias's target: the only way a document grows past its text.
            aliased = aliased or id(child) in reached
            reached.add(id(child))
            if id(child) not in sizes:
                pending.append((child, False))
    if duplicates:
        raise YamlError(name, duplicates)


def _duplicate_keys(node: MappingNode) -> list[str]:
    seen: dict[str, int] = {}
    found = []
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag == f"{_CORE}merge":
            continue  # `<<:` merges are allowed to be overridden, as in yaml.v3
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            found.append(f"`{key_node.value}` is set on line {seen[key_node.value]} and again on line {line}; "
                         "the Pulumi CLI refuses a key set twice (a reader sees one value, a YAML parser "
                         "keeps the other): keep one")
        else:
            seen[key_node.value] = line
    return found


def _typed_scalars(root: Node) -> Iterator[TypedScalar]:
    """Every value whose YAML type is not plain text, JSON-like numbers or true/false, with its path."""
    # The expanded document is bounded by `_check_structure`, so following aliases here is too.
    pending: list[tuple[Node, tuple[str | int, ...]]] = [(root, ())]
    while pending:
        node, path = pending.pop()
        line = node.start_mark.line + 1
        kind = _kind(node)
        if kind is not None:
            yield TypedScalar(path, line, kind, str(node.value) if isinstance(node, ScalarNode) else "")
            continue
        if isinstance(node, MappingNode):
            pending += [(value, (*path, str(key.value))) for key, value in node.value if isinstance(key, ScalarNode)]
        elif isinstance(node, SequenceNode):
            pending += [(value, (*path, index)) for index, value in enumerate(node.value)]


def _kind(node: Node) -> str | None:
    tag = node.tag.removeprefix(_CORE)
    if isinstance(node, ScalarNode):
        text = str(node.value)
        if tag == "timestamp":
            return "a date" if _DATE.fullmatch(text) else "a date and time"
        if tag == "binary":
            return "binary data (!!binary)"
        if tag == "bool" and text not in _SAME_BOOL:
            return "a YAML 1.1 boolean (yes/no/on/off)"
        if tag == "int" and not _SAME_INT.fullmatch(text):
            return "a YAML 1.1 number (octal, hexadecimal, binary, sexagesimal or with underscores)"
        if tag == "float" and not _SAME_FLOAT.fullmatch(text):
            return "a YAML 1.1 number (sexagesimal or with underscores)"
        if tag == "str" and node.style is None and _YAML12_ONLY_NUMBER.fullmatch(text):
            return "a number in YAML 1.2, which the Pulumi CLI follows"
        return None
    if tag in ("set", "omap", "pairs"):
        return f"a YAML {tag} (!!{tag})"
    return None
