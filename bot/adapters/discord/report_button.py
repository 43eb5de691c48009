"""The "Report" button under every meme. Its custom_id carries the job's id, and presses are
routed by that id's pattern (discord.py's `DynamicItem`, registered on the bot at start), so
a button keeps working after a restart and no view is kept in memory per meme."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import discord

from memeswap.bot.adapters.discord.interactions import requester_for, say
from memeswap.bot.core.reports import THANKS, UnknownMemeError

if TYPE_CHECKING:
    from memeswap.bot.adapters.discord.client import MemeswapClient

PREFIX = "memeswap:report:"


class ReportButton(discord.ui.DynamicItem[discord.ui.Button], template=r"memeswap:report:(?P<job>.*)"):
    """Whatever follows the prefix is checked by `TemplateReports.report`: a client may send
    any custom_id, and only a job this bot started is reported."""

    def __init__(self, job_id: str) -> None:
        super().__init__(discord.ui.Button(label="Report", emoji="🚩", style=discord.ButtonStyle.secondary,
                                           custom_id=f"{PREFIX}{job_id}"[:100]))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item,
                             match) -> ReportButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        services = cast("MemeswapClient", interaction.client).services
        try:
            await services.reports.report(requester_for(interaction), self.job_id)
        except UnknownMemeError as error:
            await say(interaction, str(error))
            return
        await say(interaction, THANKS)


def report_view(job_id: str) -> discord.ui.View:
    """The button row under a meme. The view is stopped before it is sent: discord.py would
    otherwise keep every meme's view for good (they never time out); presses reach
    `ReportButton` through its registered pattern instead."""
    view = discord.ui.View(timeout=None)
    view.add_item(ReportButton(job_id))
    view.stop()
    return view
