"""Following a swap job in an interaction: the original response edited as the job moves,
then replaced by the meme. An interaction's token lives 15 minutes; a meme that is ready
after that (or whose token Discord no longer accepts) is posted in the channel instead."""

from __future__ import annotations

import io
import logging

import discord

from memeswap.bot.adapters.discord.interactions import MAX_CONTENT
from memeswap.bot.adapters.discord.report_button import report_view
from memeswap.bot.core.status import failure_line, fitted, follow_job, success_line
from memeswap.bot.services import BotServices
from memeswap.inference.jobs.contract import Failed, Succeeded, SwapJob
from memeswap.inference.media.formats.registry import FORMATS, media_format

log = logging.getLogger("memeswap.discord")

EXTENSIONS = {media_format(name).mime: name for name in FORMATS}  # a result's MIME type -> its file extension


def bot_can_post(interaction: discord.Interaction) -> bool:
    """Whether the bot itself is in the interaction's channel: a server that installed it, or
    a DM with it. A person's own install used in other people's DMs, in group DMs or in a
    server without the bot answers through the interaction's token only."""
    if interaction.guild_id is not None:
        return interaction.is_guild_integration()
    return bool(interaction.context.dm_channel)


def reply_address(interaction: discord.Interaction) -> str | None:
    """`SwapJob.reply_to`: the channel and the person, should another run of the bot deliver
    it; None where the bot cannot post (`bot_can_post`)."""
    if not bot_can_post(interaction):
        return None
    return f"discord:{interaction.channel_id}:{interaction.user.id}"


def parse_reply_address(reply_to: str | None) -> tuple[int, int] | None:
    parts = (reply_to or "").split(":")
    if len(parts) != 3 or parts[0] != "discord" or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return int(parts[1]), int(parts[2])


def meme_file(data: bytes, mime: str) -> discord.File:
    return discord.File(io.BytesIO(data), filename=f"meme.{EXTENSIONS.get(mime, 'gif')}",
                        description="A face-swapped meme (AI-generated)")


class InteractionDelivery:
    def __init__(self, services: BotServices) -> None:
        self.services = services

    async def follow(self, interaction: discord.Interaction, job: SwapJob) -> None:
        await follow_job(self.services.swaps.follow(job), lambda line: self.status(interaction, line),
                         lambda event: self._deliver(interaction, job, event))

    async def status(self, interaction: discord.Interaction, text: str) -> None:
        if interaction.is_expired():
            return
        try:
            await interaction.edit_original_response(content=fitted(text, MAX_CONTENT))
        except discord.HTTPException as error:
            log.info("interaction %s: status not shown: %s", interaction.id, error)

    async def deliver_unfollowed(self, client: discord.Client, job: SwapJob, event: Succeeded | Failed) -> None:
        address = parse_reply_address(job.reply_to)
        if address is None:
            return
        channel_id, user_id = address
        channel = client.get_channel(channel_id) or await client.fetch_channel(channel_id)
        assert isinstance(channel, discord.abc.Messageable), "a reply address names the channel a command ran in"
        if isinstance(event, Succeeded):
            data = await self.services.result(event)
            await channel.send(success_line(event, f"<@{user_id}> here's your meme!"), file=meme_file(data, event.mime),
                               view=report_view(job.job_id))
            await self.services.discard_result(event)
        else:
            await channel.send(fitted(f"<@{user_id}> ⚠️ {failure_line(event)}", MAX_CONTENT))

    async def _deliver(self, interaction: discord.Interaction, job: SwapJob, event: Succeeded) -> None:
        data = await self.services.result(event)
        try:
            if not interaction.is_expired():
                try:
                    await interaction.edit_original_response(content=success_line(event, "✅ Here's your meme!"),
                                                             attachments=[meme_file(data, event.mime)],
                                                             view=report_view(job.job_id))
                    return
                except (discord.NotFound, discord.Forbidden) as error:
                    log.info("interaction %s: token no longer valid (%s); posting in the channel", interaction.id,
                             error)
                except discord.HTTPException as error:
                    if error.status != 401:
                        raise
                    log.info("interaction %s: token expired; posting in the channel", interaction.id)
            if not bot_can_post(interaction):
                log.info("interaction %s: the meme could not be shown, and the bot is not in that channel",
                         interaction.id)
                return
            channel = interaction.channel
            assert isinstance(channel, discord.abc.Messageable), "a command runs in a channel that takes messages"
            await channel.send(success_line(event, f"{interaction.user.mention} here's your meme!"),
                               file=meme_file(data, event.mime), view=report_view(job.job_id))
        finally:
            await self.services.discard_result(event)
