"""Resume data on disk: `<cache>/.incomplete/<infohash>.resume`, written atomically.

libtorrent's own format (`write_resume_data_buf` / `read_resume_data`): it records which
pieces are verified, so a torrent re-added after a restart (or after it left the session
idle) continues where it stopped instead of downloading or re-hashing everything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

import libtorrent as lt

log = logging.getLogger("streme.p2p")


def resume_path(incomplete_root: str, infohash: str) -> str:
    return os.path.join(incomplete_root, f"{infohash}.resume")


def read_resume(incomplete_root: str, infohash: str) -> lt.add_torrent_params | None:
    """The saved parameters of `infohash`, or None when there are none (or they are bad)."""
    path = resume_path(incomplete_root, infohash)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("ignoring resume data for %s: %s", infohash, exc)
        return None
    try:
        return lt.read_resume_data(data)
    except RuntimeError as exc:
        log.warning("ignoring resume data for %s: %s", infohash, exc)
        return None


def write_resume(incomplete_root: str, infohash: str, params: lt.add_torrent_params) -> None:
    """Write through a temporary name and rename, so a crash leaves the old file or the new."""
    data = lt.write_resume_data_buf(params)
    path = resume_path(incomplete_root, infohash)
    tmp = f"{path}.{time.time_ns()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def delete_resume(incomplete_root: str, infohash: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(resume_path(incomplete_root, infohash))
