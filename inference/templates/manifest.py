import re
from typing import Literal

from pydantic import BaseModel, Field

from inference.errors import InputError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
SHOWN_CHARS = 40  # of a refused name, in its refusal: a chat message has a length limit


def validate_template_name(name: str) -> str:
    """Template names become folder names: lowercase letters, digits and dashes only. The
    refusal quotes at most `SHOWN_CHARS` characters of what was typed."""
    if not NAME_PATTERN.fullmatch(name or ""):
        shown = name if len(name or "") <= SHOWN_CHARS else name[:SHOWN_CHARS] + "…"
        raise InputError(
            f"invalid template name {shown!r}: use 1-32 lowercase letters, digits and dashes, "
            "starting with a letter or digit",
            code="bad_name",
        )
    return name


class TemplateManifest(BaseModel):
    name: str
    title: str
    tags: list[str] = Field(default_factory=list)
    fps: float
    loop: bool = True
    caption: str | None = None
    caption_position: Literal["top", "bottom"] = "bottom"
    media: str = "template.mp4"
    overlay: str | None = None
    source: str | None = None
