"""What the bot says about itself: the same on every platform, except the lines that name a
platform's own commands (`PlatformWording`)."""

from __future__ import annotations

from dataclasses import dataclass

WHAT_IT_DOES = "I put your face into meme GIFs: send me a selfie, pick a template, and get the meme back."
CONSENT = ("Only swap your own face, or the face of a friend who agreed to it. "
           "Every meme I make carries a visible \"AI\" badge.")
PRIVACY = ("I keep a photo only for the minutes its swap takes; a face you save is kept as a small crop "
           "until you delete it, and forgetting you erases everything I have about you.")


@dataclass(frozen=True)
class PlatformWording:
    """Refusals that tell the person which command to use, in their platform's commands."""

    no_saved_face: str  # a swap without a selfie, or showing the saved face, when none is saved


TELEGRAM = PlatformWording(
    no_saved_face="Send me a selfie first (or save one with /face), then pick a template.")
DISCORD = PlatformWording(
    no_saved_face="You have no saved face yet: save one with `/face set`, or attach a `selfie:` to `/swap`.")
