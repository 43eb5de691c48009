"""Machine-readable provenance in the output files: an XMP packet with IPTC's Digital
Source Type beside the human-readable label (`dc:description`), written into each format
byte by byte, since ffmpeg writes XMP into none of them.

The term is IPTC's `compositeWithTrainedAlgorithmicMedia` ("the compositing of trained
algorithmic media with some other media"): a swap puts a face made by face models into
frames that are otherwise the template's own. The packet is small (~600 bytes) and is
added to every attempt of the budget search, so it counts in the byte budget.

Where the packet goes:
- GIF: an application extension "XMP DataXMP" holding the packet as raw bytes, followed
  by Adobe's 258-byte "magic trailer" so that GIF readers skip it as sub-blocks;
- WebP: an `XMP ` chunk, flagged in the VP8X header;
- MP4: a top-level `uuid` box with Adobe's XMP UUID, appended after the media, so no
  sample offset moves.
"""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
XMP_UUID = uuid.UUID("be7acfcb-97a9-42e8-9c71-999491e3afac")  # Adobe's for XMP in ISO BMFF (MP4)
# The GIF application extension's identifier and authentication code, and the trailer that
# makes the raw packet parse as sub-blocks: 0x01, 0xFF down to 0x00, then the terminator.
GIF_XMP_APP = b"XMP DataXMP"
GIF_XMP_TRAILER = b"\x01" + bytes(range(255, -1, -1)) + b"\x00"


class NotThisFormatError(ValueError):
    """The bytes are not the container the packet was to go into."""


def xmp_packet(label: str, source_type: str = DIGITAL_SOURCE_TYPE) -> bytes:
    """A compact XMP packet: `label` as dc:description, `source_type` as
    Iptc4xmpExt:DigitalSourceType; read-only (`end="r"`), so without padding."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        f' xmlns:Iptc4xmpExt="{IPTC_EXT_NS}">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(label)}</rdf:li></rdf:Alt></dc:description>'
        f"<Iptc4xmpExt:DigitalSourceType>{escape(source_type)}</Iptc4xmpExt:DigitalSourceType>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="r"?>'
    ).encode()


def gif_xmp_extension(packet: bytes) -> bytes:
    """The GIF application extension that carries `packet` (which has no NUL byte: it is UTF-8 XML)."""
    if b"\x00" in packet:
        raise ValueError("an XMP packet in a GIF must not contain NUL bytes")
    return b"\x21\xff" + bytes([len(GIF_XMP_APP)]) + GIF_XMP_APP + packet + GIF_XMP_TRAILER


def webp_with_xmp(data: bytes, packet: bytes, width: int, height: int) -> bytes:
    """`data` with an XMP chunk appended and flagged in VP8X (added when the file is a
    simple one-image WebP, which has no VP8X header)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise NotThisFormatError("not a WebP file")
    body = bytearray(data[12:8 + int.from_bytes(data[4:8], "little")])
    if body[:4] != b"VP8X":  # a simple (single-image) file: add the extended header
        alpha = 0x10 if body[:4] == b"VP8L" else 0
        vp8x = bytes([alpha, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body[:0] = b"VP8X" + len(vp8x).to_bytes(4, "little") + vp8x
    body[8] |= 0x04  # XMP present
    body += b"XMP " + len(packet).to_bytes(4, "little") + packet + (b"\x00" if len(packet) % 2 else b"")
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WEBP" + bytes(body)


def mp4_with_xmp(data: bytes, packet: bytes) -> bytes:
    """`data` with a top-level `uuid` XMP box appended."""
    if data[4:8] != b"ftyp":
        raise NotThisFormatError("not an MP4 file")
    box = XMP_UUID.bytes + packet
    return data + (8 + len(box)).to_bytes(4, "big") + b"uuid" + box
