"""Who replays each entry of a dump (nextmavens.backup.replay), on listings as pg_restore 15 prints them."""

from __future__ import annotations

import pytest

from nextmavens.backup.replay import ReplayError, list_file_text, parse_listing, plan_replay

# From `pg_restore --list` of a project database applied by the engine; `$` marks the trailing space
# pg_restore prints for an entry without an owner.
LISTING = """;
; Archive created at 2026-12-01 22:42:31 UTC
;     dbname: shop
;
; Selected TOC Entries:
;
8; 2615 16543 SCHEMA - auth auth_admin_shop
3409; 0 0 ACL - SCHEMA auth auth_admin_shop
11; 2615 16497 SCHEMA - extensions nextmavens_layer
3410; 0 0 ACL - SCHEMA extensions nextmavens_layer
3413; 0 0 ACL - SCHEMA public pg_database_owner
2; 3079 16500 EXTENSION - pgcrypto$
3415; 0 0 COMMENT - EXTENSION pgcrypto$
891; 1247 16559 TYPE public ty owner_shop
3253; 2605 16560 CAST - CAST (public.ty AS text)$
273; 1255 16548 FUNCTION auth uid() auth_admin_shop
270; 1255 16537 FUNCTION pgbouncer get_auth(text) nextmavens_layer
258; 1255 16552 FUNCTION public evil(integer) owner_shop
220; 1259 16553 TABLE public t owner_shop
3400; 0 16553 TABLE DATA public t owner_shop
3399; 6104 16542 PUBLICATION - supabase_realtime nextmavens_layer
3401; 6106 16600 PUBLICATION TABLE public supabase_realtime t nextmavens_layer
2088; 826 16545 DEFAULT ACL public DEFAULT PRIVILEGES FOR TABLES owner_shop
3254; 3466 16539 EVENT TRIGGER - pgrst_ddl_watch nextmavens_layer
3420; 0 0 COMMENT - EVENT TRIGGER pgrst_ddl_watch nextmavens_layer
""".replace("$", " ")

SUPERUSERS = ("postgres", "nextmavens_layer")
PROJECT = ("owner_shop", "authenticator_shop", "auth_admin_shop", "storage_admin_shop")


def test_listing_owner_is_the_last_field_and_empty_when_the_line_ends_in_a_space() -> None:
    entries = {e.dump_id: e for e in parse_listing(LISTING)}
    assert entries[2].owner == "" and entries[2].catalog == 3079
    assert entries[3253].owner == "" and entries[3253].rest == "CAST - CAST (public.ty AS text)"
    assert entries[220].owner == "owner_shop"
    assert entries[3415].is_comment and not entries[220].is_comment


def test_platform_first_tenant_as_its_roles_event_triggers_and_publication_members_last() -> None:
    plan = plan_replay(parse_listing(LISTING), SUPERUSERS, PROJECT, "backup 1")
    assert plan.platform == [8, 11, 3410, 2, 270, 3399]
    assert plan.tenant == [3409, 3413, 891, 3253, 273, 258, 220, 3400, 2088]
    assert plan.platform_last == [3415, 3401, 3254, 3420]
    assert plan.tenant_roles == ["auth_admin_shop", "owner_shop"]


def test_a_tenant_name_that_ends_like_a_superuser_stays_the_tenants() -> None:
    """Object names may hold spaces; the owner field is still the last one."""
    listing = "300; 1259 17000 TABLE public x nextmavens_layer owner_shop\n301; 2605 17001 CAST - CAST (a postgres) \n"
    plan = plan_replay(parse_listing(listing), SUPERUSERS, PROJECT, "backup 1")
    assert plan.tenant == [300, 301] and plan.platform == []


@pytest.mark.parametrize(
    "owner",
    ["intruder", "owner_other", "anon", "owner_shop"],
)
def test_objects_of_roles_that_are_neither_the_projects_nor_the_platforms_are_refused(owner: str) -> None:
    listing = f"400; 1259 17100 TABLE public planted {owner}\n"
    project = () if owner == "owner_shop" else PROJECT  # a project role that is a superuser now is excluded
    with pytest.raises(ReplayError, match=owner):
        plan_replay(parse_listing(listing), SUPERUSERS, project, "backup 1")


def test_garbage_in_the_listing_is_an_error_not_a_guess() -> None:
    with pytest.raises(ReplayError, match="unexpected line"):
        parse_listing("not a toc line\n")


def test_list_file_holds_only_dump_ids_in_order() -> None:
    assert list_file_text([11, 2, 270]) == "11;\n2;\n270;\n"
