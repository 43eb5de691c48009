from dataclasses import dataclass


@dataclass(frozen=True)
class MediaLimits:
    """Limits every entry point shares (DESIGN.md, "Limits every entry point shares")."""

    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_template_bytes: int = 50 * 1024 * 1024
    max_frames: int = 300
    max_seconds: float = 15.0
    max_template_side: int = 1024
    min_side: int = 16


def human_bytes(n: float) -> str:
    """A byte count as people read it in a message: 1.5 MB, 300 KB, 12 bytes."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{int(n)} bytes"
