"""Animated WebP (libwebp_anim); the label and the digital source type are an XMP chunk
(`provenance.py`), which ffmpeg cannot write. Ladder: quality 80 to 35, then smaller sizes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from memeswap.inference.media import ffmpeg
from memeswap.inference.media.formats.base import MediaFormat, Setting
from memeswap.inference.media.provenance import NotThisFormatError, webp_with_xmp, xmp_packet

if TYPE_CHECKING:
    from memeswap.inference.media.encode import StreamingEncoder


class WebpFormat(MediaFormat):
    name = "webp"
    title = "WebP"
    mime = "image/webp"
    scale_exponent = 1.2
    levels = ((80, 1.0), (65, 0.77), (50, 0.65), (35, 0.55))

    def encode_args(self, encoder: StreamingEncoder, setting: Setting, output: Path) -> list[str]:
        filters, _ = encoder.geometry(setting)
        args = ["-vf", ",".join(filters)] if filters else []
        return args + ["-c:v", "libwebp_anim", "-quality", format(round(setting.level, 2), "g"),
                       "-compression_level", "2", "-loop", "0" if encoder.loop else "1", "-f", "webp",
                       ffmpeg.file_url(output)]

    def labelled(self, data: bytes, comment: str | None, width: int, height: int) -> bytes:
        if not comment:
            return data
        try:
            return webp_with_xmp(data, xmp_packet(comment), width, height)
        except NotThisFormatError:
            raise ffmpeg.FFmpegError("ffmpeg wrote something that is not a WebP") from None
