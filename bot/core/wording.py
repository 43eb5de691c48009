"""What the bot says about itself, the same on every platform."""

WHAT_IT_DOES = "I put your face into meme GIFs: send me a selfie, pick a template, and get the meme back."
CONSENT = ("Only swap your own face, or the face of a friend who agreed to it. "
           "Every meme I make carries a visible \"AI\" badge.")
PRIVACY = ("I keep a photo only for the minutes its swap takes; a face you save is kept as a small crop "
           "until you delete it, and forgetting you erases everything I have about you.")
