"""memeswap: your face swapped into every frame of a meme GIF.

The project's three top-level folders install under this one import name:
`memeswap.inference` (the swap engine, no chat code), `memeswap.bot` (the chat bot, its
store and the command line) and `memeswap.templates` (the built-in template library).
"""

import os as _os

# ONNX Runtime (1.2x and later) carries Microsoft's 1DS telemetry, which writes a session
# file (`.ses`) in the temp folder at import and may post usage events. memeswap promises to
# run offline and send nothing anywhere: it is off unless the operator sets it otherwise.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
