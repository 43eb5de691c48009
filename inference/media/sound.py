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
