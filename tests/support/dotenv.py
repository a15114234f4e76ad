"""compose-go's dotenv parser, transcribed for tests: what docker compose v2 makes of an env file.

It transcribes the parts of compose-go's dotenv/parser.go (`parse`, `locateKeyName`, `extractVarValue`;
identical from v2.0.0 through v2.1.x, the compose Debian 13 ships) that decide what a value becomes, plus the
`${VAR}` / `$VAR` / `$$` interpolation of its template package that unquoted and double-quoted values go
through. Tests read the env files the product writes with it, as compose would.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?+-][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")


def _interpolate(value: str, lookup: Callable[[str], str | None]) -> str:
    def one(match: re.Match[str]) -> str:
        if match[1]:
            return "$"
        return lookup(match[2] or match[3]) or ""

    return _VARIABLE.sub(one, value)


def compose_go_dotenv(src: str, lookup: Callable[[str], str | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    rest = src
    while True:
        rest = rest.lstrip()
        while rest.startswith("#"):  # getStatementStart: comment lines
            rest = rest.partition("\n")[2].lstrip()
        if not rest:
            return out
        key, sep, rest = re.split(r"([=:\n])", rest, maxsplit=1)
        key = key.strip()
        assert sep != "\n", "inherited variables are not written"
        rest = rest.lstrip(" \t\v\f\r")
        quote = rest[:1]
        if quote not in ("'", '"'):  # unquoted: up to the line end, " #..." cut, interpolated
            line, _, rest = rest.partition("\n")
            out[key] = _interpolate(line.split(" #", 1)[0].rstrip(), lookup)
            continue
        chars: list[str] = []
        escaped = False
        for index in range(1, len(rest)):
            char = rest[index]
            if char != quote:
                if not escaped and char == "\\":
                    escaped = True
                    continue
                if escaped:
                    escaped = False
                    chars.append("\\")
                chars.append(char)
                continue
            if escaped:  # \' inside '...', \" inside "..."
                escaped = False
                chars.append(char)
                continue
            value = "".join(chars)
            if quote == '"':  # expandEscapes (only \\ and \$ matter here), then interpolation
                value = _interpolate(value.replace("\\$", "$$").replace("\\\\", "\\"), lookup)
            out[key] = value
            rest = rest[index + 1 :]
            break
        else:
            raise ValueError("unterminated quoted value")
