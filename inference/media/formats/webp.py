"""Animated WebP (libwebp_anim); the label is an XMP chunk (dc:description), which ffmpeg
cannot write. Ladder: quality 80 to 35, then smaller sizes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from memeswap.inference.media import ffmpeg
from memeswap.inference.media.formats.base import MediaFormat, Setting

if TYPE_CHECKING:
    from memeswap.inference.media.encode import StreamingEncoder


class WebpFormat(MediaFormat):
    name = "webp"
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
        return _webp_with_comment(data, comment, width, height) if comment else data


def _xmp_packet(comment: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(comment)}</rdf:li></rdf:Alt></dc:description>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="r"?>'
    ).encode()


def _webp_with_comment(data: bytes, comment: str, width: int, height: int) -> bytes:
    """Append an XMP chunk carrying `comment` (dc:description) and flag it in VP8X."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ffmpeg.FFmpegError("ffmpeg wrote something that is not a WebP")
    body = bytearray(data[12:8 + int.from_bytes(data[4:8], "little")])
    if body[:4] != b"VP8X":  # a simple (single-image) file: add the extended header
        alpha = 0x10 if body[:4] == b"VP8L" else 0
        vp8x = bytes([alpha, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body[:0] = b"VP8X" + len(vp8x).to_bytes(4, "little") + vp8x
    body[8] |= 0x04  # XMP present
    xmp = _xmp_packet(comment)
    body += b"XMP " + len(xmp).to_bytes(4, "little") + xmp + (b"\x00" if len(xmp) % 2 else b"")
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WEBP" + bytes(body)
