"""YAML to plain values, remembering the line of every key and item, and refusing duplicate keys.

PyYAML silently keeps the last of two equal keys; for a manifest that is a hidden typo, so it is an error.

Loading is bounded before any value is built, because manifests may come from tenants: a file larger than
MAX_BYTES, nesting deeper than MAX_DEPTH, more than MAX_ALIASES aliases, or more than MAX_NODES values once
aliases are expanded ("billion laughs") is refused with the line where the limit was crossed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[str | int, ...]

MAX_BYTES = 256 * 1024  # a real manifest is a few KiB
MAX_DEPTH = 20  # mappings and sequences inside each other; manifests use five
MAX_ALIASES = 100  # `*name` references in one file
MAX_NODES = 5_000  # values once every alias is expanded; a manifest has about a hundred
# Events come from libyaml when PyYAML was built with it (pip's wheels and Debian's package are).
_EventLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_FLOW_BRACKETS = 200  # only without libyaml, see _check_brackets


class YamlSourceError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class YamlDocument:
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of the deepest part of `path` that exists in the file (1-based)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def parse_yaml(text: str) -> YamlDocument:
    if len(text.encode()) > MAX_BYTES:
        raise YamlSourceError(1, f"the file is larger than {MAX_BYTES // 1024} KiB")
    try:
        _check_shape(text)
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlSourceError(line, f"invalid YAML: {exc.problem or exc}") from None
    if len(nodes) > 1:
        raise YamlSourceError(nodes[1].start_mark.line + 1, "a manifest holds exactly one YAML document")
    document = YamlDocument(data=None)
    if not nodes or nodes[0] is None:
        return document
    document.data = _build(nodes[0], (), document.lines, SafeConstructor(), _Budget())
    return document


def _check_shape(text: str) -> None:
    """Depth and alias count from the event stream, before anything is composed: PyYAML's composer is
    recursive, and its pure-Python scanner slows down sharply on deep flow nesting (`[[[[...`), so the events
    come from libyaml when PyYAML has it (it stops early and fast), else from the Python parser."""
    if _EventLoader is yaml.SafeLoader:
        _check_brackets(text)
    depth = aliases = 0
    for event in yaml.parse(text, Loader=_EventLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlSourceError(_line(event), f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise YamlSourceError(_line(event), f"more than {MAX_ALIASES} aliases")


def _check_brackets(text: str) -> None:
    """Without libyaml: bound flow nesting by counting brackets, quotes or not, before the Python scanner
    sees them. Generous (MAX_FLOW_BRACKETS) so brackets inside strings never trip it in a real manifest."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for ch in line:
            if ch in "[{":
                depth += 1
                if depth > MAX_FLOW_BRACKETS:
                    raise YamlSourceError(number, f"brackets nested more than {MAX_FLOW_BRACKETS} deep")
            elif ch in "]}":
                depth = max(0, depth - 1)


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 1


class _Budget:
    """Counts values as they are built, so aliases expanding exponentially stop at MAX_NODES."""

    def __init__(self) -> None:
        self.nodes = 0
        self.active: set[int] = set()  # nodes being built: an alias to one of them is a cycle

    def spend(self, node: Node) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise YamlSourceError(node.start_mark.line + 1, f"more than {MAX_NODES} values once aliases are expanded")
        if id(node) in self.active:
            raise YamlSourceError(node.start_mark.line + 1, "an alias refers to a value that contains it")


def _build(node: Node, path: Path, lines: dict[Path, int], constructor: SafeConstructor, budget: _Budget) -> Any:
    budget.spend(node)
    lines[path] = node.start_mark.line + 1
    if isinstance(node, (MappingNode, SequenceNode)):
        budget.active.add(id(node))
        try:
            return _build_collection(node, path, lines, constructor, budget)
        finally:
            budget.active.discard(id(node))
    return constructor.construct_object(node)


def _build_collection(
    node: MappingNode | SequenceNode, path: Path, lines: dict[Path, int], constructor: SafeConstructor, budget: _Budget
) -> Any:
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise YamlSourceError(key_node.start_mark.line + 1, "mapping keys must be plain scalars")
            key = constructor.construct_object(key_node)
            if key in result:
                raise YamlSourceError(key_node.start_mark.line + 1, f"key {key!r} appears twice")
            child = (*path, key)
            result[key] = _build(value_node, child, lines, constructor, budget)
            # Point errors about a key at the key's own line, even when its value starts below it.
            lines[child] = key_node.start_mark.line + 1
        return result
    return [_build(item, (*path, index), lines, constructor, budget) for index, item in enumerate(node.value)]
