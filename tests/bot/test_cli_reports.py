"""`memeswap reports list|resolve` as the operator runs them: a real process over the store
the bots write their reports to."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memeswap.bot.core.reports import TemplateReports
from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.store.database import Database

GUILD = Scope("guild", "discord", "111")
CHAT = Scope("chat", "telegram", "-100456")


def run(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memeswap", *args], cwd=data_dir.parent, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "MEMESWAP_DATA_DIR": str(data_dir), **env})


@pytest.fixture
def reported(tmp_path) -> Path:
    """A store in which two people of a Discord server reported memes made with "bounce" (so,
    with the default of three, it is not hidden yet) and one person of a Telegram group
    reported one made with "shake"; as the bots record them."""
    data = tmp_path / "data"

    async def main() -> None:
        database = Database.for_data_dir(data)
        try:
            await database.migrate()
            reports = TemplateReports(database)
            for n, (template, scope, reporter) in enumerate([("bounce", GUILD, "2"), ("bounce", GUILD, "3"),
                                                             ("shake", CHAT, "4")]):
                job_id = f"{n + 1:032x}"
                await reports.issue(job_id, template, scope)
                await reports.report(Requester(scope.platform, reporter, scope), job_id)
        finally:
            await database.close()

    asyncio.run(main())
    return data


def test_list_then_hide_then_keep(reported):
    everything = run(["reports", "list"], reported)
    in_guild = run(["reports", "list", "--scope", "discord-guild-111"], reported)
    hidden = run(["reports", "resolve", "1", "--hide"], reported)
    open_after_hide = run(["reports", "list", "--open"], reported)
    listed_hidden = run(["reports", "list", "--scope", "discord-guild-111"], reported)
    kept = run(["reports", "resolve", "2", "--keep"], reported)
    listed_kept = run(["reports", "list", "--scope", "discord-guild-111"], reported)

    assert everything.returncode == 0, everything.stderr
    lines = everything.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["#3", "#2", "#1"]
    assert lines[0].endswith("telegram-chat--100456  shake  by telegram:4  open")
    assert lines[2].endswith("discord-guild-111  bounce  by discord:2  open")
    assert [line.split()[0] for line in in_guild.stdout.splitlines()] == ["#2", "#1"]
    assert hidden.stdout.strip() == "'bounce' stays hidden in discord-guild-111 (2 reports closed)"
    assert [line.split()[0] for line in open_after_hide.stdout.splitlines()] == ["#3"]
    assert all(line.endswith("hidden") for line in listed_hidden.stdout.splitlines())
    assert kept.stdout.strip() == "'bounce' is shown again in discord-guild-111 (2 reports closed)"
    assert all(line.endswith("kept") for line in listed_kept.stdout.splitlines())


@pytest.mark.parametrize("args, message", [
    (["reports", "resolve", "99", "--keep"], "no report #99"),
    (["reports", "resolve", str(2 ** 70), "--hide"], "no report #"),
    (["reports", "resolve", "1"], "say --hide or --keep"),
    (["reports", "resolve", "1", "--hide", "--keep"], "say --hide or --keep"),
    (["reports", "list", "--scope", "../../etc/" + "x" * 500], "not a scope: '../../etc/"),
])
def test_a_mistake_is_one_line_and_changes_nothing(reported, args, message):
    result = run(args, reported)
    after = run(["reports", "list", "--open"], reported)
    assert result.returncode == 2 and result.stderr.startswith(f"error: {message}"), result.stderr
    assert len(result.stderr.splitlines()) == 1 and len(result.stderr) < 200
    assert len(after.stdout.splitlines()) == 3


def test_a_template_reported_by_enough_people_shows_as_hidden(reported):
    listed = run(["reports", "list", "--open"], reported, MEMESWAP_REPORTS_TO_HIDE="2")
    assert [line.rsplit("  ", 1)[1] for line in listed.stdout.splitlines()] == ["open", "open, hidden",
                                                                               "open, hidden"]
