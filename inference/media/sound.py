"""A video template's sound, carried into outputs that can play it (MP4).

The sound is cut or looped to the output's length (`seconds`, never more than the
template's own length), and re-encoded to AAC at a bounded bitrate (96 kb/s, mono or
stereo: 15 s, the longest template, is ~180 KB), so it is a small, predictable part of the
byte budget that the encoder's search counts with the rest of the file. GIF and WebP have
no sound; their encoders never take it.

The template's file is opened as a second ffmpeg input with the same hardening as decoding
(`-protocol_whitelist file`, a forced demuxer); a sound ffmpeg cannot decode is dropped
(`StreamingEncoder` encodes again without it) rather than failing the swap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memeswap.inference.media import ffmpeg
from memeswap.inference.media.decode import video_demuxer

AUDIO_BITRATE = "96k"
PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TemplateSound:
    path: Path
    demuxer: str  # "mov" or "matroska"
    seconds: float  # the output's length: the sound is looped or cut to it

    def input_args(self) -> list[str]:
        """ffmpeg's options for the sound's input, after the frames' (so it is input 1)."""
        return ["-protocol_whitelist", "file", "-stream_loop", "-1", "-f", self.demuxer,
                "-i", ffmpeg.file_url(self.path)]

    def output_args(self) -> list[str]:
        """ffmpeg's output options: the frames' video, the sound as AAC, both ending together."""
        return ["-map", "0:v:0", "-map", "1:a:0", "-af", "aformat=channel_layouts=mono|stereo",
                "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-t", format(self.seconds, ".3f"), "-shortest"]


def template_sound(path: Path, seconds: float) -> TemplateSound | None:
    """The sound of the video template at `path` for an output of `seconds`; None when it is
    not a video or has no sound track."""
    demuxer = video_demuxer(path)
    if demuxer is None or not seconds > 0:
        return None
    try:
        stream, _ = ffmpeg.probe(path, demuxer, timeout=PROBE_TIMEOUT_S)
    except (ffmpeg.FFmpegError, ffmpeg.AmbiguousProbeError):
        return None
    if stream is None or stream.audio_streams == 0:
        return None
    return TemplateSound(path, demuxer, seconds)


def mp4_has_sound(data: bytes) -> bool:
    """Whether the MP4 `data` has a sound track: a `hdlr` box of handler type `soun` inside
    its `moov` box (found by walking the top-level boxes)."""
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if size == 1 and pos + 16 <= len(data):  # a 64-bit size follows the type
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - pos
        if size < 8:
            return False
        if kind == b"moov":
            moov = data[pos:pos + size]
            start = 0
            while (found := moov.find(b"hdlr", start)) != -1:
                if moov[found + 12:found + 16] == b"soun":
                    return True
                start = found + 4
            return False
        pos += size
    return False
