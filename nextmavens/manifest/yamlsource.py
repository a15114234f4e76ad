"""YAML to plain values, remembering the line of every key and item, and refusing duplicate keys.

PyYAML silently keeps the last of two equal keys; for a manifest that is a hidden typo, so it is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[str | int, ...]


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
    try:
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
    document.data = _build(nodes[0], (), document.lines, SafeConstructor())
    return document


def _build(node: Node, path: Path, lines: dict[Path, int], constructor: SafeConstructor) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise YamlSourceError(key_node.start_mark.line + 1, "mapping keys must be plain scalars")
            key = constructor.construct_object(key_node)
            if key in result:
                raise YamlSourceError(key_node.start_mark.line + 1, f"key {key!r} appears twice")
            child = (*path, key)
            result[key] = _build(value_node, child, lines, constructor)
            # Point errors about a key at the key's own line, even when its value starts below it.
            lines[child] = key_node.start_mark.line + 1
        return result
    if isinstance(node, SequenceNode):
        return [_build(item, (*path, index), lines, constructor) for index, item in enumerate(node.value)]
    return constructor.construct_object(node)
