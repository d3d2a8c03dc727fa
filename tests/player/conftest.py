"""Fixtures for the real-player tests: ffmpeg-made clips and a headless Chromium.

Both skip the test when their program is missing (`make system-deps` installs chromium
and ffmpeg). The clips are made once per session; Chromium is launched once per module
and closed when the module ends, also after failures.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.player.browser import Browser, chromium_path
from tests.player.clips import FFMPEG, FFPROBE, ClipMaker


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> ClipMaker:
    if FFMPEG is None or FFPROBE is None:
        pytest.skip("ffmpeg/ffprobe not installed (make test installs them)")
    return ClipMaker(tmp_path_factory.mktemp("clips"), duration=20.0)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: Playwright's sync API leaves its asyncio loop marked as
    # running in this thread while it is open, which async tests in later modules must
    # not see.
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium not installed (make test installs it)")
    with Browser(executable) as b:
        yield b
