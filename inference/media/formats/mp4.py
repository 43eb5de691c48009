"""MP4: H.264 (libx264), yuv420p, BT.709, even dimensions, `+faststart`; the template's
sound as AAC when it has one (`sound.py`), else no audio track;
the label is the container's `comment`, and an XMP `uuid` box (`provenance.py`) carries it
again with the digital source type. Ladder: CRF 20 to 32, then smaller sizes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from memeswap.inference.media import ffmpeg
from memeswap.inference.media.formats.base import MediaFormat, Setting
from memeswap.inference.media.provenance import NotThisFormatError, mp4_with_xmp, xmp_packet

if TYPE_CHECKING:
    from memeswap.inference.media.encode import StreamingEncoder


class Mp4Format(MediaFormat):
    name = "mp4"
    title = "MP4"
    mime = "video/mp4"
    scale_exponent = 1.1
    even_size = True
    carries_sound = True
    levels = ((20, 1.0), (24, 0.6), (28, 0.4), (32, 0.27))

    def encode_args(self, encoder: StreamingEncoder, setting: Setting, output: Path) -> list[str]:
        filters, _ = encoder.geometry(setting)
        filters.append("scale=out_color_matrix=bt709:out_range=tv,format=yuv420p")
        sound = encoder.sound.output_args() if encoder.sound is not None else ["-an"]
        args = [*sound, "-sn", "-dn", "-vf", ",".join(filters),
                "-c:v", "libx264", "-preset", "veryfast", "-crf", format(round(setting.level, 2), "g"),
                "-profile:v", "high", "-pix_fmt", "yuv420p",
                "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
                "-movflags", "+faststart"]
        if encoder.comment:
            args += ["-metadata", f"comment={encoder.comment}"]
        return args + ["-f", "mp4", ffmpeg.file_url(output)]

    def labelled(self, data: bytes, comment: str | None, width: int, height: int) -> bytes:
        if not comment:
            return data
        try:
            return mp4_with_xmp(data, xmp_packet(comment))
        except NotThisFormatError:
            raise ffmpeg.FFmpegError("ffmpeg wrote something that is not an MP4") from None
