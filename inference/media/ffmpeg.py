"""Thin helpers around the ffmpeg binary that imageio-ffmpeg ships.

We call the binary directly (not through imageio's wrappers) so that every command
gets the same hardening: no stdin, a forced demuxer, local files only, and stderr
kept in a temporary file so that a chatty ffmpeg can never block on a full pipe.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
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


def wait_for_exit(proc: subprocess.Popen, timeout: float) -> int:
    """`proc`'s exit status, killing it after `timeout` seconds (its status is then negative).

    `Popen.wait(timeout=...)` polls with sleeps that grow to 50 ms, which came to ~60 ms of
    idle time at the end of every GIF job; this blocks in waitpid while a timer keeps the
    deadline."""
    timer = threading.Timer(timeout, proc.kill)
    timer.daemon = True
    timer.start()
    try:
        return proc.wait()
    finally:
        timer.cancel()


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


class AmbiguousProbeError(ValueError):
    """ffmpeg's description of a file has a part twice, or out of its place.

    ffmpeg prints a file's metadata keys (and a Matroska track's language) as they are,
    newlines included, so a file can add lines of its own that read exactly like ffmpeg's: a
    second `Duration:`, a `Stream #0:0` line, a rotation. Their text cannot tell them from the
    real ones; ffmpeg's layout can, since it prints each of those once and in one place. A
    description that breaks the layout is refused, never guessed at."""


# Lines are split on "\n" only: ffmpeg passes a value's other line breaks through (U+2028
# and the like), which str.splitlines would take for the start of a line of ffmpeg's own.
# ffmpeg prints an input's duration and streams two spaces in, and everything a file says
# about itself (metadata, also a value over several lines) further in: the patterns are
# anchored at exactly that indent, so a tag such as title="Duration: 00:00:00.50" is not
# mistaken for the real thing.
_INPUT_RE = re.compile(r"^Input #(\d+), ")
_DURATION_RE = re.compile(r"^ {2}Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM_START = "  Stream #"
# The only text of a stream line that comes from the file is its language in brackets
# (Matroska stores any string there): a stream line is read only when it has one kind, and a
# language without brackets or colons, so no "(x): Video: 640x480): Audio: ..." can hide in it.
_KINDS = "(Video|Audio|Subtitle|Data|Attachment|Unknown)"
_STREAM_RE = re.compile(r"^ {2}Stream #0:(\d+)(?:\[0x[0-9a-fA-F]+\])?(?:\([^():]*\))?: " + _KINDS + r": (.*)$")
_KIND_RE = re.compile(": " + _KINDS + ": ")
_SIZE_RE = re.compile(r"^(\d+)x(\d+)\b")
_RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)$")
_ROTATION_RE = re.compile(r"^ +(?:displaymatrix|Display Matrix): rotation of (-?\d+(?:\.\d+)?) degrees$")
_CONTAINER_META = "  Metadata:"
_STREAM_PART_RE = re.compile(r"^ {3,}(Metadata|Side data):$")
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


@dataclass
class _StreamLines:
    """One stream of `ffmpeg -i`'s description: its line and the lines printed under it."""

    index: int
    kind: str
    rest: str
    rotation: int | None = None
    parts: set[str] = field(default_factory=set)  # "Metadata", "Side data": each printed once


def _layout(stderr: str) -> tuple[float | None, dict[str, str], list[_StreamLines]] | None:
    """Input #0's duration, container metadata and streams, from `ffmpeg -i` output laid out
    as ffmpeg lays it out; None when there is no input description (ffmpeg could not open
    the file). Raises AmbiguousProbeError when a line is where ffmpeg never prints it:
    a second input, a second duration, a stream before the duration or out of order (each
    stream index is printed once, in increasing order), a stream line that does not parse,
    a rotation outside a stream or twice in one, a metadata or side data header twice."""
    lines = stderr.split("\n")
    inputs = [number for number, line in enumerate(lines) if _INPUT_RE.match(line)]
    if not inputs:
        return None
    if len(inputs) > 1 or not lines[inputs[0]].startswith("Input #0, "):
        raise AmbiguousProbeError("more than one input described")
    duration: float | None = None
    durations = 0
    container_meta = 0
    in_container_meta = False
    metadata: dict[str, str] = {}
    streams: list[_StreamLines] = []
    for line in lines[inputs[0] + 1:]:
        if line.startswith(_STREAM_START):
            stream = _STREAM_RE.match(line)
            if stream is None or len(_KIND_RE.findall(line)) != 1:
                raise AmbiguousProbeError("a stream line that is not ffmpeg's")
            index = int(stream.group(1))
            if durations != 1:
                raise AmbiguousProbeError("a stream before the duration")
            if streams and index <= streams[-1].index:
                raise AmbiguousProbeError(f"stream {index} described twice or out of order")
            streams.append(_StreamLines(index, stream.group(2), stream.group(3)))
            in_container_meta = False
            continue
        if line.startswith("  Duration: "):
            durations += 1
            if durations > 1 or streams:
                raise AmbiguousProbeError("a second duration")
            match = _DURATION_RE.match(line)
            if match:
                h, m, s = match.groups()
                duration = int(h) * 3600 + int(m) * 60 + float(s)
            in_container_meta = False
            continue
        if line == _CONTAINER_META:
            container_meta += 1
            if container_meta > 1 or durations or streams:
                raise AmbiguousProbeError("a second container metadata header")
            in_container_meta = True
            continue
        if in_container_meta:
            meta = _META_RE.match(line)
            if meta:
                metadata.setdefault(meta.group(1), meta.group(2))
            elif not line.startswith("    "):
                in_container_meta = False
        part = _STREAM_PART_RE.match(line)
        if part and streams:
            if part.group(1) in streams[-1].parts:
                raise AmbiguousProbeError(f"a second {part.group(1).lower()} header in one stream")
            streams[-1].parts.add(part.group(1))
        rotation = _ROTATION_RE.match(line)
        if rotation:
            if not streams or streams[-1].rotation is not None:
                raise AmbiguousProbeError("a rotation outside a stream or twice in one")
            streams[-1].rotation = int(round(float(rotation.group(1)))) % 360
    return duration, metadata, streams


def parse_probe_output(stderr: str) -> StreamInfo | None:
    """Parse `ffmpeg -i FILE` output; None when there is no usable video stream. Raises
    AmbiguousProbeError when the file put lines of its own among ffmpeg's (see `_layout`)."""
    layout = _layout(stderr)
    if layout is None:
        return None
    duration, metadata, streams = layout
    found: dict | None = None
    video_ordinal = -1
    for stream in streams:
        if stream.kind != "Video":
            continue
        video_ordinal += 1
        if found is not None or "(attached pic)" in stream.rest:
            continue
        parts = _split_top_level(stream.rest)
        info: dict = {"codec": parts[0].split()[0] if parts and parts[0] else "?",
                      "pix_fmt": "", "size": None, "fps": None, "tbr": None,
                      "index": video_ordinal, "rotation": stream.rotation or 0}
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
        audio_streams=sum(stream.kind == "Audio" for stream in streams),
        metadata=metadata,
    )


def probe(path: Path, demuxer: str | None = None, timeout: float = 60.0) -> tuple[StreamInfo | None, str]:
    """Run `ffmpeg -i` on a local file; returns (parsed info or None, raw stderr). Raises
    AmbiguousProbeError when the file wrote lines of its own into ffmpeg's description."""
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
