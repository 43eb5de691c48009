"""The `memeswap` command line, one module per command group (the way cogs split a
Discord bot's commands); `bot.cli` only adds them."""
