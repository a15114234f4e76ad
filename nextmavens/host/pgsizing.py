"""Replication capacity of the shared PostgreSQL, sized to the number of projects the host is for.

The pinned supabase/postgres ships max_replication_slots = 5 and max_wal_senders = 10 (its postgresql.conf,
nextmavens.upstream.facts); every connected Realtime tenant (one per project) holds a walsender and up to two
slots. With the image's defaults a sixth project's Realtime gets no slot. The image's own figures stay on top as
headroom for operator tools (pg_basebackup, pg_receivewal). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from nextmavens.upstream.facts import REALTIME_SLOTS_PER_TENANT, REALTIME_WAL_SENDERS_PER_TENANT, pinned


@dataclass(frozen=True)
class ReplicationCapacity:
    max_replication_slots: int
    max_wal_senders: int


def replication_capacity(max_projects: int) -> ReplicationCapacity:
    defaults = pinned("postgres").config_defaults
    return ReplicationCapacity(
        max_replication_slots=int(defaults["max_replication_slots"]) + REALTIME_SLOTS_PER_TENANT * max_projects,
        max_wal_senders=int(defaults["max_wal_senders"]) + REALTIME_WAL_SENDERS_PER_TENANT * max_projects,
    )


def postgres_command(max_projects: int) -> list[str]:
    """The shared Postgres's compose `command:`: the pinned image's own CMD (its config directory holds the
    preloads and hba) with the replication capacity for `max_projects` on top."""
    capacity = replication_capacity(max_projects)
    return [
        *pinned("postgres").cmd,
        "-c",
        f"max_replication_slots={capacity.max_replication_slots}",
        "-c",
        f"max_wal_senders={capacity.max_wal_senders}",
    ]
