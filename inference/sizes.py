"""Byte counts in the words of a chat message."""


def human_bytes(n: float) -> str:
    """A byte count as people read it in a message: 1.5 MB, 300 KB, 12 bytes."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{int(n)} bytes"
