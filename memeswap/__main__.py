from memeswap.bot.cli import main

main()
