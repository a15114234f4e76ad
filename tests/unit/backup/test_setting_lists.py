"""Reading stored list settings (search_path and the like) back into items, as PostgreSQL's SplitGUCList does,
so `restore --replace` can set them on the swapped-in database unchanged."""

from __future__ import annotations

import pytest

from nextmavens.backup.restore import RestoreError, split_setting_list


@pytest.mark.parametrize(
    ("stored", "items"),
    [
        ("app, pg_catalog", ["app", "pg_catalog"]),
        ('"$user", public', ["$user", "public"]),
        ('"a,b", "say ""hi"""', ["a,b", 'say "hi"']),
        ('""', [""]),
        ("single", ["single"]),
    ],
)
def test_split_setting_list(stored: str, items: list[str]) -> None:
    assert split_setting_list(stored) == items


def test_split_setting_list_refuses_what_postgresql_would_not_store() -> None:
    with pytest.raises(RestoreError):
        split_setting_list('"open')
    with pytest.raises(RestoreError):
        split_setting_list('"a" b')
