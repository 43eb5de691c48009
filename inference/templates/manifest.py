import re
from typing import Literal

from pydantic import BaseModel, Field

from memeswap.inference.errors import InputError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
SHOWN_CHARS = 40  # of a refused name, in its refusal: a chat message has a length limit
# Templates stored for one job only (a GIF someone posted) are named by the job: this
# prefix and 16 hex digits. Nobody may add a template under such a name, so removing a
# one-off after its job can never remove a template someone added.
ONE_OFF_PREFIX = "one-off-"
ONE_OFF_NAME = re.compile(r"one-off-[0-9a-f]{16}")


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


def validate_new_template_name(name: str, one_off: bool = False) -> str:
    """The name of a template being added: a valid name, and a one-off's name exactly when
    it is a one-off (the `one-off-` names are reserved for those)."""
    validate_template_name(name)
    if one_off and not ONE_OFF_NAME.fullmatch(name):
        raise ValueError(f"a one-off template's name is {ONE_OFF_PREFIX} and 16 hex digits, not {name!r}")
    if not one_off and name.startswith(ONE_OFF_PREFIX):
        raise InputError(f"names starting with {ONE_OFF_PREFIX!r} are reserved; pick another name", code="bad_name")
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
    # where the media comes from and under which licence: every built-in names both (NOTICE
    # lists them); optional for added templates
    source: str | None = None
    licence: str | None = None
