"""Test clips for the real player, made by ffmpeg from its lavfi sources.

A moving test pattern (testsrc2) with a 440 Hz tone, keyframes every 2 s:

- `mp4-moov-end`: H.264 High (x264 superfast, B-frames) 1280x720 30 fps at 8 Mb/s
  (`-maxrate 8M -bufsize 16M`) + AAC 128 kb/s, ffmpeg's default layout: `mdat`, then
  `moov`, so a player must read the end of the file before it can play;
- `mp4-faststart`: the same streams remuxed with `-movflags +faststart` (`moov` first);
- `mkv`: the same H.264/AAC streams remuxed into Matroska;
- `webm`: VP9 + Opus 854x480, libvpx in realtime mode (`-cpu-used 8`) so it encodes in
  about the clip's sixth on 2 cores; the encoder undershoots its 8 Mb/s target on this
  simple picture (about 4.5 Mb/s).

The H.264 encode is done once and remuxed for the other two, so a 20 s set costs about
7 s on 2 cores (3.5 s for x264, 3 s for VP9, the remuxes next to nothing). `ClipMaker`
makes each clip on first use and caches it (the fixture is session-scoped).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")

KINDS = ("mp4-faststart", "mp4-moov-end", "webm", "mkv")
SUFFIX = {"mp4-faststart": ".mp4", "mp4-moov-end": ".mp4", "webm": ".webm", "mkv": ".mkv"}

FPS = 30
GOP = ["-g", str(2 * FPS), "-keyint_min", str(2 * FPS), "-sc_threshold", "0"]
RATE = ["-b:v", "8M", "-maxrate", "8M", "-bufsize", "16M"]
H264 = ["-c:v", "libx264", "-preset", "superfast", *RATE, *GOP, "-pix_fmt", "yuv420p"]
VP9 = [
    "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
    *RATE, *GOP, "-pix_fmt", "yuv420p",
]  # fmt: skip


@dataclass(frozen=True)
class Clip:
    kind: str
    path: Path
    duration: float  # ffprobe's format duration, s
    size: int  # bytes
    bit_rate: int  # ffprobe's format bit rate, b/s
    codecs: tuple[str, ...]  # ffprobe's codec names, stream order
    width: int
    height: int
    seconds_to_make: float  # wall time of the ffmpeg runs that made it

    @property
    def suffix(self) -> str:
        return self.path.suffix


def run_ffmpeg(*args: str) -> None:
    assert FFMPEG is not None, "ffmpeg is not installed"
    proc = subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y", *args],
        capture_output=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {proc.stderr.decode()[-2000:]}")


def probe(path: Path) -> tuple[float, int, tuple[str, ...], int, int]:
    """ffprobe: (duration s, bit rate b/s, codec names, video width, video height)."""
    assert FFPROBE is not None, "ffprobe is not installed"
    out = subprocess.run(
        [
            FFPROBE, "-v", "error", "-of", "json",
            "-show_entries", "format=duration,bit_rate:stream=codec_name,codec_type,width,height",
            str(path),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout  # fmt: skip
    info = json.loads(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    return (
        float(info["format"]["duration"]),
        int(info["format"]["bit_rate"]),
        tuple(str(s["codec_name"]) for s in info["streams"]),
        int(video["width"]),
        int(video["height"]),
    )


def mp4_boxes(path: Path) -> list[str]:
    """The top-level box types of an MP4 file, in file order."""
    boxes: list[str] = []
    size = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            length = int.from_bytes(header[:4], "big")
            boxes.append(header[4:8].decode("latin-1"))
            if length == 1:
                length = int.from_bytes(header[8:16], "big")
            elif length == 0:
                break
            offset += length
    return boxes


class ClipMaker:
    """Makes the clips of one duration into `directory`, each once, on first `get`."""

    def __init__(self, directory: Path, duration: float = 20.0) -> None:
        self.directory = directory
        self.duration = duration
        self._clips: dict[str, Clip] = {}

    def _sources(self, size: str) -> list[str]:
        return [
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", f"{self.duration}",
        ]  # fmt: skip

    def _make(self, kind: str, path: Path) -> None:
        if kind == "mp4-moov-end":
            run_ffmpeg(*self._sources("1280x720"), *H264, "-c:a", "aac", "-b:a", "128k", str(path))
        elif kind in ("mp4-faststart", "mkv"):
            source = self._clips["mp4-moov-end"].path
            flags = ["-movflags", "+faststart"] if kind == "mp4-faststart" else []
            run_ffmpeg("-i", str(source), "-map", "0", "-c", "copy", *flags, str(path))
        else:
            run_ffmpeg(
                *self._sources("854x480"), *VP9, "-c:a", "libopus", "-b:a", "128k", str(path)
            )

    def get(self, kind: str) -> Clip:
        clip = self._clips.get(kind)
        if clip is not None:
            return clip
        if kind not in KINDS:
            raise ValueError(f"unknown clip kind {kind!r}; known: {KINDS}")
        if kind in ("mp4-faststart", "mkv"):
            self.get("mp4-moov-end")  # their source, made (and timed) on its own
        path = self.directory / f"{kind}-{self.duration:g}s{SUFFIX[kind]}"
        started = time.monotonic()
        self._make(kind, path)
        elapsed = time.monotonic() - started
        duration, bit_rate, codecs, width, height = probe(path)
        clip = Clip(
            kind, path, duration, path.stat().st_size, bit_rate, codecs, width, height, elapsed
        )
        self._clips[kind] = clip
        return clip
