"""Thin helpers around the ffmpeg binary that imageio-ffmpeg ships.

We call the binary directly (not through imageio's wrappers) so that every command
gets the same hardening: no stdin, a forced demuxer, local files only, and stderr
kept in a temporary file so that a chatty ffmpeg can never block on a full pipe.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg


class FFmpegError(RuntimeError):
    """ffmpeg failed on input we had already accepted: a bug or a broken install."""


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def base_command() -> list[str]:
    """The start of every ffmpeg command line we run."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]


def file_url(path: Path) -> str:
    """An input/output URL that can't be mistaken for an option or another protocol."""
    return "file:" + str(Path(path).resolve())


def rate_arg(fps: float) -> str:
    """fps as a rational ffmpeg accepts exactly (29.97 -> 2997/100)."""
    frac = Fraction(fps).limit_denominator(100_000)
    return f"{frac.numerator}/{frac.denominator}"


def stderr_tail(stderr: bytes | str, lines: int = 3) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def run(args: list[str], timeout: float = 600.0) -> None:
    """Run ffmpeg with `args` appended to `base_command()`; raise FFmpegError on failure."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(
                base_command() + args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise FFmpegError(f"ffmpeg took longer than {timeout:.0f} s") from exc
        if proc.returncode != 0:
            err.seek(0)
            raise FFmpegError(f"ffmpeg failed ({proc.returncode}): {stderr_tail(err.read())}")


@dataclass(frozen=True)
class StreamInfo:
    """What `ffmpeg -i` says about a file's first real video stream."""

    width: int  # as displayed, i.e. after the rotation ffmpeg applies on decode
    height: int
    fps: float | None
    duration: float | None  # of the whole container
    codec: str
    pix_fmt: str
    video_index: int  # for -map 0:v:N
    rotation: int
    audio_streams: int
    metadata: dict[str, str]


# ffmpeg prints an input's duration and streams two spaces in, and everything a file says
# about itself (metadata, also a value over several lines) further in: the patterns are
# anchored at exactly that indent, so a tag such as title="Duration: 00:00:00.50" is not
# mistaken for the real thing.
_DURATION_RE = re.compile(r"^ {2}Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", re.MULTILINE)
_STREAM_RE = re.compile(r"^ {2}Stream #\d+:\d+.*?: (Video|Audio|Subtitle|Data|Attachment): (.*)$")
_SIZE_RE = re.compile(r"^(\d+)x(\d+)\b")
_RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)$")
_ROTATION_RE = re.compile(r"^ +(?:displaymatrix|Display Matrix): rotation of (-?\d+(?:\.\d+)?) degrees")
_META_RE = re.compile(r"^\s{4}(\w+)\s*:\s?(.*)$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses or brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def parse_probe_output(stderr: str) -> StreamInfo | None:
    """Parse `ffmpeg -i FILE` output; None when there is no usable video stream."""
    duration = None
    match = _DURATION_RE.search(stderr)
    if match:
        h, m, s = match.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)

    metadata: dict[str, str] = {}
    found: dict | None = None
    video_ordinal = -1
    audio = 0
    in_found_stream = False
    in_container_meta = False
    for line in stderr.splitlines():
        stream = _STREAM_RE.match(line)
        if stream:
            in_container_meta = False
            in_found_stream = False
            kind, rest = stream.groups()
            if kind == "Audio":
                audio += 1
            if kind != "Video":
                continue
            video_ordinal += 1
            if found is not None or "(attached pic)" in rest:
                continue
            parts = _split_top_level(rest)
            info: dict = {"codec": parts[0].split()[0] if parts and parts[0] else "?",
                          "pix_fmt": "", "size": None, "fps": None, "tbr": None,
                          "index": video_ordinal, "rotation": 0}
            if len(parts) > 1:
                info["pix_fmt"] = parts[1].split("(")[0].strip()
            for part in parts[1:]:
                size = _SIZE_RE.match(part)
                if size and info["size"] is None:
                    info["size"] = (int(size.group(1)), int(size.group(2)))
                rate = _RATE_RE.match(part.split(" (")[0].strip())
                if rate:
                    value = float(rate.group(1)) * (1000 if rate.group(2) else 1)
                    info[rate.group(3)] = value
            if info["size"] is not None:
                found = info
                in_found_stream = True
            continue
        if line.strip().startswith("Metadata:") and not line.startswith("    "):
            in_container_meta = True
            continue
        if in_container_meta:
            meta = _META_RE.match(line)
            if meta:
                metadata.setdefault(meta.group(1), meta.group(2))
            elif not line.startswith("    "):
                in_container_meta = False
        if in_found_stream and found is not None:
            rot = _ROTATION_RE.match(line)
            if rot:
                found["rotation"] = int(round(float(rot.group(1)))) % 360

    if found is None:
        return None
    width, height = found["size"]
    if found["rotation"] in (90, 270):
        width, height = height, width
    fps = found["fps"] or found["tbr"]
    return StreamInfo(
        width=width,
        height=height,
        fps=fps if fps and 0 < fps <= 1000 else None,
        duration=duration,
        codec=found["codec"],
        pix_fmt=found["pix_fmt"],
        video_index=found["index"],
        rotation=found["rotation"],
        audio_streams=audio,
        metadata=metadata,
    )


def probe(path: Path, demuxer: str | None = None, timeout: float = 60.0) -> tuple[StreamInfo | None, str]:
    """Run `ffmpeg -i` on a local file; returns (parsed info or None, raw stderr)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file"]
    if demuxer:
        cmd += ["-f", demuxer]
    cmd += ["-i", file_url(path)]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FFmpegError(f"ffmpeg took longer than {timeout:.0f} s to read the file header") from exc
    stderr = proc.stderr.decode("utf-8", "replace")
    return parse_probe_output(stderr), stderr
