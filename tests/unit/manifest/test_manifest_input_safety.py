"""Hostile manifest input is refused at validation, with file:line: field, before anything is applied:
`${...}` and odd characters in URLs (they reach docker compose's env files), control characters in free text,
newlines hidden in domains, and YAML built to exhaust memory or the stack."""

from __future__ import annotations

import re
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from nextmavens.manifest import yamlsource
from nextmavens.manifest.loader import ManifestErrors, load_manifests
from tests.support.projects import write_raw

MAX_BYTES = 256 * 1024  # the documented limit (README, manifest reference)
HEAD = "ref: shop\nname: Shop\n"


def errors_of(root: Path) -> list[str]:
    with pytest.raises(ManifestErrors) as caught:
        load_manifests(root)
    return [str(e) for e in caught.value.errors]


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    return tmp_path / "projects"


# ------------------------------------------------------------------ item 2: URLs reaching env files


@pytest.mark.parametrize(
    ("yaml_value", "fragment"),
    [
        ('"https://x.example/?x=${POSTGRES_PASSWORD}"', "must not contain '$'"),
        ('"https://x.example/$NEXTMAVENS_DSN"', "must not contain '$'"),
        ('"https://x.example/\\u0007"', "U+0007"),
        ('"https://x.example/\\0"', "U+0000"),
        ('"https://x.example/\\u202e"', "U+202E"),
        ('"https://x.example\\\\@evil.example/"', "'\\\\'"),
        ('"https://x.example/\\"q"', "'\"'"),
        ('"https://x.example/`id`"', "'`'"),
        ('"https://x.example/ a"', "U+0020"),
    ],
)
def test_site_url_with_dollar_or_odd_characters_is_refused(projects: Path, yaml_value: str, fragment: str) -> None:
    write_raw(projects, "acme", "shop.yaml", f"{HEAD}auth:\n  site_url: {yaml_value}\n")
    (error,) = errors_of(projects)
    assert error.startswith("projects/acme/shop.yaml:4: auth.site_url: "), error
    assert fragment in error


def test_redirect_and_webhook_urls_with_dollar_are_refused(projects: Path) -> None:
    write_raw(
        projects,
        "acme",
        "shop.yaml",
        f"{HEAD}auth:\n  site_url: https://x.example\n  redirect_urls:\n    - https://ok.example/cb\n"
        "    - https://x.example/?t=$" + "{PGPASSWORD}\n"
        "whatsapp:\n  instances:\n    - name: main\n      webhook_url: https://h.example/$" + "{HOME}\n",
    )
    errors = errors_of(projects)
    assert len(errors) == 2
    assert errors[0].startswith("projects/acme/shop.yaml:7: auth.redirect_urls[1]: a URL must not contain '$'")
    assert errors[1].startswith(
        "projects/acme/shop.yaml:11: whatsapp.instances[0].webhook_url: a URL must not contain '$'"
    )


def test_a_comma_in_a_redirect_url_cannot_add_a_second_allowed_url(projects: Path) -> None:
    write_raw(
        projects,
        "acme",
        "shop.yaml",
        f"{HEAD}auth:\n  site_url: https://x.example\n  redirect_urls:\n    - https://ok.example/,https://evil.example\n",
    )
    (error,) = errors_of(projects)
    assert error.startswith("projects/acme/shop.yaml:6: auth.redirect_urls[0]: a redirect URL must not contain ','")


def test_ordinary_urls_still_load(projects: Path) -> None:
    write_raw(
        projects,
        "acme",
        "shop.yaml",
        f'{HEAD}auth:\n  site_url: "https://x.example:8443/app?a=1&b=%20c#frag"\n'
        "  redirect_urls: ['http://[::1]:3000/cb', \"https://ok.example/it's\"]\n",
    )
    (project,) = load_manifests(projects).projects
    assert project.manifest.auth.site_url == "https://x.example:8443/app?a=1&b=%20c#frag"


# ------------------------------------------------------------------ item 15: control characters in free text


@pytest.mark.parametrize("escaped", ["\\0", "\\u0007", "\\e[31m", "\\u200b", "\\u202e", "\\u2028", "\\x7f"])
def test_control_characters_in_the_project_name_are_refused(projects: Path, escaped: str) -> None:
    write_raw(
        projects, "acme", "shop.yaml", f'ref: shop\nname: "Sh{escaped}op"\nauth:\n  site_url: https://x.example\n'
    )
    (error,) = errors_of(projects)
    assert error.startswith("projects/acme/shop.yaml:2: name: must not contain control or invisible characters")


def test_control_characters_in_org_name_and_member_email_are_refused(projects: Path) -> None:
    write_raw(
        projects,
        "acme",
        "org.yaml",
        'name: "Acme\\0"\nmembers:\n  - email: "a\\u0000b@x.example"\n    role: owner\n',
    )
    assert [e.split(": must")[0] for e in errors_of(projects)] == [
        "projects/acme/org.yaml:1: name",
        "projects/acme/org.yaml:3: members[0].email",
    ]


def test_printable_unicode_names_are_kept(projects: Path) -> None:
    write_raw(
        projects, "acme", "shop.yaml", 'ref: shop\nname: "Café [/x] ${X} 東京"\nauth:\n  site_url: https://x.example\n'
    )
    (project,) = load_manifests(projects).projects
    assert project.manifest.name == "Café [/x] ${X} 東京"


# ------------------------------------------------------------------ item 8: newlines hidden in domains


@pytest.mark.parametrize("domain", ["zz\\n.com", "shop.example\\n", "a\\n.b.example", "shop.example\\r"])
def test_a_newline_in_a_domain_is_refused_with_its_line(projects: Path, domain: str) -> None:
    write_raw(
        projects,
        "acme",
        "shop.yaml",
        f'{HEAD}auth:\n  site_url: https://x.example\ndomains:\n  - ok.example\n  - "{domain}"\n',
    )
    (error,) = errors_of(projects)
    assert error.startswith("projects/acme/shop.yaml:7: domains[1]: domain "), error
    assert "is not a valid host name" in error


def test_an_org_folder_name_with_a_trailing_newline_is_refused(projects: Path) -> None:
    write_raw(projects, "acme\n", "shop.yaml", f"{HEAD}auth:\n  site_url: https://x.example\n")
    (error,) = errors_of(projects)
    assert "must be a lowercase slug" in error


# ------------------------------------------------------------------ item 9: bounded loading


# Refusals take milliseconds; what the bounds prevent takes minutes (3.4e9 values) or exhausts memory. The
# ceiling is far from both, so a loaded machine cannot fail the test; the traced peak memory is the exact check.
REFUSAL_CEILING_S = 10.0


def _bounded(root: Path) -> tuple[list[str], float, int]:
    """Load, returning the errors, the seconds taken and the peak memory traced (bytes)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        errors = errors_of(root)
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return errors, elapsed, peak


def test_a_billion_laughs_manifest_is_refused_fast_and_small(projects: Path) -> None:
    lines = [f"{HEAD}auth:\n  site_url: https://x.example\nx0: &x0 [" + ", ".join(['"lol"'] * 9) + "]"]
    for level in range(1, 10):  # 9**10 values once expanded
        lines.append(f"x{level}: &x{level} [" + ", ".join([f"*x{level - 1}"] * 9) + "]")
    write_raw(projects, "acme", "shop.yaml", "\n".join(lines) + "\n")
    errors, elapsed, peak = _bounded(projects)
    assert len(errors) == 1 and "values once aliases are expanded" in errors[0], errors
    assert errors[0].startswith("projects/acme/shop.yaml:")
    assert elapsed < REFUSAL_CEILING_S, elapsed
    assert peak < 8 * 1024 * 1024, peak


def test_many_aliases_are_refused(projects: Path) -> None:
    body = "a: &a x\nlist: [" + ", ".join(["*a"] * 150) + "]\n"
    write_raw(projects, "acme", "shop.yaml", f"{HEAD}auth:\n  site_url: https://x.example\n{body}")
    (error,) = errors_of(projects)
    assert error == "projects/acme/shop.yaml:6: more than 100 aliases"


def test_a_self_referencing_alias_is_refused(projects: Path) -> None:
    write_raw(projects, "acme", "shop.yaml", f"{HEAD}auth:\n  site_url: https://x.example\nloop: &l [1, *l]\n")
    (error,) = errors_of(projects)
    assert error == "projects/acme/shop.yaml:5: an alias refers to a value that contains it"


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
@pytest.mark.parametrize(
    "nested",
    [
        "deep: " + "[" * 100_000 + "]" * 100_000 + "\n",  # flow: would exhaust the composer's recursion
        "deep: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n",
        "deep:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(300)) + " " * 301 + "v\n",  # block
    ],
)
def test_deep_nesting_is_refused_fast_and_small(
    projects: Path, nested: str, libyaml: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not libyaml:  # PyYAML built without libyaml: the pure-Python parser must be bounded as well
        monkeypatch.setattr(yamlsource, "_EventLoader", yaml.SafeLoader, raising=False)
    write_raw(projects, "acme", "shop.yaml", f"{HEAD}auth:\n  site_url: https://x.example\n{nested}")
    errors, elapsed, peak = _bounded(projects)
    assert len(errors) == 1 and errors[0].startswith("projects/acme/shop.yaml:"), errors
    assert "nest" in errors[0], errors
    assert elapsed < REFUSAL_CEILING_S, elapsed
    assert peak < 8 * 1024 * 1024, peak


def test_an_oversized_manifest_is_refused_without_reading_it_all(projects: Path) -> None:
    path = write_raw(projects, "acme", "shop.yaml", f"{HEAD}auth:\n  site_url: https://x.example\n")
    with path.open("a") as handle:
        handle.write("# padding\n" * (10 * MAX_BYTES // 10))  # ten times the limit
    errors, elapsed, peak = _bounded(projects)
    assert errors == ["projects/acme/shop.yaml:1: the file is larger than 256 KiB"]
    assert elapsed < REFUSAL_CEILING_S, elapsed
    assert peak < 2 * MAX_BYTES + 1024 * 1024, peak


def test_a_manifest_using_a_few_anchors_still_loads(projects: Path) -> None:
    write_raw(
        projects,
        "acme",
        "shop.yaml",
        f"{HEAD}auth:\n  site_url: &site https://x.example\n  redirect_urls: [*site]\n"
        "api:\n  rate_limits:\n    anon: &limit {second: 5}\n    service_role: *limit\n",
    )
    (project,) = load_manifests(projects).projects
    assert project.manifest.auth.redirect_urls == ["https://x.example"]
    assert project.manifest.api.rate_limits.service_role.second == 5


def test_the_json_schema_gives_editors_the_same_url_and_text_rules() -> None:
    from nextmavens.manifest.models import TEXT_SCHEMA_PATTERN, URL_SCHEMA_PATTERN

    assert re.search(URL_SCHEMA_PATTERN, "https://x.example/a?b=1#c")
    for bad in ("https://x.example/${HOME}", "https://x.example/ a", "https://x.example/\\", "ftp://x.example"):
        assert not re.search(URL_SCHEMA_PATTERN, bad), bad
    assert re.search(TEXT_SCHEMA_PATTERN, "Café [/x] 東京")
    for bad in ("a\0b", "a\x1b[31m", "a\u202eb", "a\u200bb", "a\x85b"):
        assert not re.search(TEXT_SCHEMA_PATTERN, bad), repr(bad)


# ------------------------------------------------------------------ links and special files (the host's repository
# belongs to the platform service's user; root applies it)


def test_a_linked_manifest_is_refused_and_never_read(projects: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secrets.env"
    secret.write_text("NEXTMAVENS_SECRET=do-not-quote-me\n")
    (projects / "acme").mkdir(parents=True)
    (projects / "acme" / "shop.yaml").symlink_to(secret)
    (projects / "acme" / "org.yaml").symlink_to(secret)
    found = errors_of(projects)
    assert len([e for e in found if "not a regular file or folder" in e]) == 2, found
    assert not any("do-not-quote-me" in e for e in found)


def test_a_linked_org_folder_is_refused(projects: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_raw(elsewhere, "acme", "shop.yaml", HEAD + "auth:\n  site_url: https://shop.example\n")
    projects.mkdir()
    (projects / "acme").symlink_to(elsewhere / "acme")
    found = errors_of(projects)
    assert any("acme" in e and "not a regular file or folder" in e for e in found), found


def test_a_fifo_named_like_a_manifest_is_refused_without_hanging(projects: Path) -> None:
    import os

    (projects / "acme").mkdir(parents=True)
    os.mkfifo(projects / "acme" / "shop.yaml")
    started = time.monotonic()
    found = errors_of(projects)
    assert time.monotonic() - started < 5
    assert any("not a regular file or folder" in e for e in found), found
