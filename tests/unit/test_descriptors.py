"""The connection cap sized from the descriptor limit (streme/descriptors.py)."""

from __future__ import annotations

import resource

from streme.descriptors import MIN_CONNECTIONS, connection_cap, raise_limit


def test_a_configured_cap_wins() -> None:
    assert connection_cap(10, 1_000_000) == 10


def test_auto_keeps_a_reserve_and_two_descriptors_per_connection() -> None:
    assert connection_cap(0, 1024) == (1024 - 256) // 2
    assert connection_cap(0, 1_048_576) == (1_048_576 - 1024) // 2


def test_auto_never_goes_below_the_floor() -> None:
    assert connection_cap(0, 8) == MIN_CONNECTIONS


def test_raise_limit_lifts_the_soft_limit_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if hard != resource.RLIM_INFINITY and hard > 64:
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
            assert raise_limit() == hard
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
        else:
            assert raise_limit() >= soft
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
