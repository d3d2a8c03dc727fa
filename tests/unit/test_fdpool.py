"""Shared descriptors of cached files (streme/cache/fdpool.py): real descriptors, LRU."""

from __future__ import annotations

import os
from pathlib import Path

from streme.cache.fdpool import DescriptorPool


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def opened(tmp_path: Path, name: str) -> tuple[str, int]:
    path = tmp_path / name
    path.write_bytes(b"x")
    return str(path), os.open(path, os.O_RDONLY)


def test_the_least_recently_used_descriptor_is_closed_first(tmp_path: Path) -> None:
    pool = DescriptorPool(capacity=2)
    a, fd_a = opened(tmp_path, "a")
    b, fd_b = opened(tmp_path, "b")
    c, fd_c = opened(tmp_path, "c")
    pool.add("h1", a, fd_a)
    pool.add("h2", b, fd_b)
    assert pool.get(a) is not None  # a is used again: b is now the oldest
    pool.add("h3", c, fd_c)
    assert pool.get(b) is None
    assert not is_open(fd_b)
    assert pool.get(a) is not None
    assert is_open(fd_a)
    assert len(pool) == 2
    pool.clear()
    assert not is_open(fd_a)
    assert not is_open(fd_c)


def test_a_retired_descriptor_closes_after_its_last_response(tmp_path: Path) -> None:
    pool = DescriptorPool()
    a, fd_a = opened(tmp_path, "a")
    shared = pool.add("h1", a, fd_a)
    release = shared.acquire()  # a response reads it
    pool.forget("h1")  # the title's names changed
    assert pool.get(a) is None
    assert is_open(fd_a)
    release()
    assert not is_open(fd_a)


def test_forget_retires_every_path_of_a_title_and_only_those(tmp_path: Path) -> None:
    pool = DescriptorPool()
    a, fd_a = opened(tmp_path, "a")
    b, fd_b = opened(tmp_path, "b")
    c, fd_c = opened(tmp_path, "c")
    pool.add("h1", a, fd_a)
    pool.add("h1", b, fd_b)
    pool.add("h2", c, fd_c)
    pool.forget("h1")
    assert not is_open(fd_a)
    assert not is_open(fd_b)
    assert is_open(fd_c)
    pool.retire(c)
    pool.retire(c)  # twice: nothing more
    assert not is_open(fd_c)
    assert len(pool) == 0


def test_adding_a_path_again_replaces_its_descriptor(tmp_path: Path) -> None:
    pool = DescriptorPool()
    a, fd_old = opened(tmp_path, "a")
    fd_new = os.open(a, os.O_RDONLY)
    pool.add("h1", a, fd_old)
    pool.add("h1", a, fd_new)
    assert not is_open(fd_old)
    shared = pool.get(a)
    assert shared is not None
    assert shared.fd == fd_new
    pool.clear()
