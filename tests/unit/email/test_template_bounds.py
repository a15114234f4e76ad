"""Template rendering bounded in time as well as size (issue 17): real Jinja2 sandbox, real files in tmp_path."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from nextmavens.email.templates import MAX_RENDER_S, TemplateError, render


def write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "acme" / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return tmp_path


def test_a_loop_over_loops_is_stopped_at_the_time_limit(tmp_path: Path) -> None:
    # 10^10 iterations, no output: only the clock stops it
    spin = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    root = write(tmp_path, "spin.txt", spin)
    t0 = time.monotonic()
    with pytest.raises(TemplateError, match=r"spin\.txt takes longer than 1 s to render"):
        render(root, "acme", "spin", {})
    assert time.monotonic() - t0 < MAX_RENDER_S + 2
    assert sys.gettrace() is None  # the tracer is gone afterwards


def test_the_limit_is_per_render_and_an_ordinary_template_still_renders(tmp_path: Path) -> None:
    root = write(tmp_path, "hello.html", "{% for x in items %}<li>{{ x }}</li>{% endfor %}")
    slow = "{% for i in range(100000) %}{{ i ** 2 }}{% endfor %}" * 1000  # output, but too slowly
    with pytest.raises(TemplateError, match="takes longer"):
        render(write(tmp_path, "spin.txt", slow), "acme", "spin", {})
    out = render(root, "acme", "hello", {"items": ["<b>", "x"]})
    assert out.html == "<li>&lt;b&gt;</li><li>x</li>" and out.text is None


@pytest.mark.parametrize(
    "source",
    ["{{ 'a' * 100000000 }}", "{{ 100000000 * 'a' }}", "{{ [1] * 10000000 }}", "{{ 2 ** 100000000 }}"],
)
def test_one_step_that_would_outgrow_the_limits_is_refused(tmp_path: Path, source: str) -> None:
    root = write(tmp_path, "big.txt", source)
    t0 = time.monotonic()
    with pytest.raises(TemplateError, match="forbids"):
        render(root, "acme", "big", {})
    assert time.monotonic() - t0 < 1


def test_small_arithmetic_still_works(tmp_path: Path) -> None:
    root = write(tmp_path, "ok.txt", "{{ 'ab' * 3 }} {{ 2 ** 10 }} {{ 3 * 4 }}")
    assert render(root, "acme", "ok", {}).text == "ababab 1024 12"


BIG = "{% set s = 'x' * 2000000 %}"


@pytest.mark.parametrize(
    "source",
    [
        "{% set a = 10**1000 %}{% set b = a**1000 %}{% set c = b**1000 %}{{ c }}",  # review payload
        "{% set a = 10**1000 %}{% set b = a*a*a*a*a %}{{ b }}",
        "{{ 2 ** -100000000 }}",
        "{{ 'x'|center(2000000000) }}",
        "{{ 'x'.ljust(2000000000) }}",
        "{{ 'x'.rjust(2000000000) }}",
        "{{ 'x'.zfill(2000000000) }}",
        "{{ 'x'.center(2000000000) }}",
        BIG + "{{ s.expandtabs(100) }}",
        "{% set s = 'a,' * 500000 %}{{ s|replace(',', s) }}",
        "{% set s = 'a,' * 500000 %}{{ s.replace(',', s) }}",
        "{% set s = ('a' * 1000 ~ '\n') * 1000 %}{{ s|indent(1000000) }}",
        "{% set s = ('a\n' * 500000) %}{{ s|indent(1000) }}",
        "{% set s = ('a\n' * 500000) %}{{ s|indent('xxxxxxxxxx') }}",
        "{{ 'x'|wordwrap(2000000000) }}",
        BIG + "{{ s|wordwrap(1, wrapstring='yyyyyyyy') }}",
        "{{ '%2000000000d'|format(1) }}",
        "{{ '%*d'|format(2000000000, 1) }}",
        "{{ '%2000000000d' % 1 }}",
        "{{ '{:>2000000000}'.format(1) }}",
        "{{ '{:{}}'.format(1, 2000000000) }}",
        "{{ 'x'|truncate(2000000000) }}",
        BIG + "{{ range(1000)|join(s) }}",
        BIG + "{{ s.join(range(1000)|map('string')|list) }}",
        BIG + "{{ [s] * 1000 }}",
        BIG + "{{ ([s] * 1)|join }}{% set l = [s, s] %}{{ l + l + l }}",
        BIG + "{% for i in range(100000) %}{{ s }}{% endfor %}",
        BIG + "{% macro m() %}{% for i in range(100000) %}{{ s }}{% endfor %}{% endmacro %}{% set x = m() %}",
        BIG + "{% set t = s ~ s %}",
        BIG + "{% set t = s + s %}",
        "{{ [1]|batch(2000000000, 'x')|list }}",
        "{{ lipsum(1000000000) }}",
        "{{ 'ab'.translate({97: 'x' * 1000}) }}",
        "{% set l = ['x' * 1000] %}" + "{% set l = [l, l] %}" * 30 + "{{ l }}",
        "{% set l = ['x' * 1000] %}" + "{% set l = [l, l] %}" * 30 + "{{ l|string }}",
        "{% set l = ['x' * 1000] %}" + "{% set l = {'a': l, 'b': l} %}" * 30 + "{{ '%s' % l }}",
    ],
)
def test_a_step_whose_result_would_outgrow_the_caps_is_refused_before_it_runs(tmp_path: Path, source: str) -> None:
    root = write(tmp_path, "big.txt", source)
    with pytest.raises(TemplateError, match="forbids"):
        render(root, "acme", "big", {})


def test_ordinary_formatting_and_filters_still_render(tmp_path: Path) -> None:
    source = (
        "{{ 'hi'|center(6) }}|{{ 'a\nb'|indent(2) }}|{{ 'a b c'|wordwrap(3) }}|{{ 'a,b'|replace(',', ';') }}|"
        "{{ '%05d'|format(42) }}|{{ '%s!' % 'x' }}|{{ '{:>4}'.format('y') }}|{{ [1, 2]|join(', ') }}|"
        "{{ 'z'.ljust(3) ~ 'w' }}{{ '-'.join(range(3)|map('string')) }}|"
        "{{ 10 ** 100 // 10 ** 99 }}|{{ 'abc'|truncate(3) }}|{{ ['a'] + ['b'] }}"
    )
    root = write(tmp_path, "ok.txt", source)
    assert render(root, "acme", "ok", {}).text == (
        "  hi  |a\n  b|a b\nc|a;b|00042|x!|   y|1, 2|z  w0-1-2|10|abc|['a', 'b']"
    )
