"""The receiver's memory of where each instance's webhooks go: kept for the TTL, a refusal for less, bounded."""

from __future__ import annotations

from nextmavens.platform.hookreceiver import UNKNOWN_TTL_S, HookTarget, TargetCache

TARGET = HookTarget("shop", "sales", "shop--sales", True, webhook_secret="s" * 64, owner_dsn="password=p")


def test_a_found_target_is_kept_for_the_ttl() -> None:
    cache = TargetCache(ttl_s=30)
    cache.put(("acme", "shop", "sales"), (TARGET, "found"), now=100)
    assert cache.get(("acme", "shop", "sales"), 129.9) == (TARGET, "found")
    assert cache.get(("acme", "shop", "sales"), 130) is None


def test_a_refusal_is_kept_for_less_so_a_new_instance_is_found_soon() -> None:
    cache = TargetCache(ttl_s=30)
    cache.put(("acme", "shop", "new"), (None, "no such instance"), now=100)
    assert cache.get(("acme", "shop", "new"), 100 + UNKNOWN_TTL_S - 0.1) == (None, "no such instance")
    assert cache.get(("acme", "shop", "new"), 100 + UNKNOWN_TTL_S) is None


def test_the_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    cache = TargetCache(ttl_s=30, max_entries=2)
    cache.put(("o", "a", "i"), (TARGET, "found"), now=0)
    cache.put(("o", "b", "i"), (TARGET, "found"), now=0)
    assert cache.get(("o", "a", "i"), 1) is not None  # a is now the most recent
    cache.put(("o", "c", "i"), (TARGET, "found"), now=1)
    assert cache.get(("o", "b", "i"), 1) is None
    assert cache.get(("o", "a", "i"), 1) is not None and cache.get(("o", "c", "i"), 1) is not None


def test_secrets_never_show_in_repr() -> None:
    assert "s" * 64 not in repr(TARGET) and "password" not in repr(TARGET)
