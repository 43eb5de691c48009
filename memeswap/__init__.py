"""memeswap: your face swapped into every frame of a meme GIF.

The project's three top-level folders install under this one import name:
`memeswap.inference` (the swap engine, no chat code), `memeswap.bot` (the chat bot, its
store and the command line) and `memeswap.templates` (the built-in template library).
"""
