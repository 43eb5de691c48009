"""Custom templates by scope, through the use cases every adapter shares: who may add and
remove, who sees what, caps, names, and all-or-nothing adds."""

import asyncio

import pytest
from sqlalchemy import select

from memeswap.bot.core.requesters import GLOBAL, NotAllowedError, Requester, Scope
from memeswap.bot.core.templates import TemplateInfo, search
from memeswap.bot.store.models import AuditEntry, CustomTemplate
from memeswap.inference.errors import InputError

GUILD_A = Scope("guild", "discord", "111")
GUILD_B = Scope("guild", "discord", "222")
ADMIN_A = Requester("discord", "1", GUILD_A, is_scope_admin=True)
MEMBER_A = Requester("discord", "2", GUILD_A)
ADMIN_B = Requester("discord", "3", GUILD_B, is_scope_admin=True)
OPERATOR = Requester("cli", "operator", GLOBAL, is_operator=True)


def names(infos) -> set[str]:
    return {i.name for i in infos if not i.builtin}


def test_a_guilds_templates_are_seen_only_in_that_guild(templates, template_media, scoped_library):
    async def main():
        added = await templates.add(ADMIN_A, template_media, "our-meme", title="Our meme")
        seen_a = await templates.visible(MEMBER_A)
        seen_b = await templates.visible(ADMIN_B)
        resolved = await templates.resolve(MEMBER_A, "our-meme")
        with pytest.raises(InputError) as missing:
            await templates.resolve(ADMIN_B, "our-meme")
        return added, seen_a, seen_b, resolved, missing.value

    added, seen_a, seen_b, resolved, missing = asyncio.run(main())
    assert added.ref == "discord-guild-111/our-meme" and resolved.ref == added.ref
    assert "our-meme" in names(seen_a) and "our-meme" not in names(seen_b)
    assert {"dramatic-zoom", "duo"} <= {i.name for i in seen_b if i.builtin}  # built-ins for everyone
    assert missing.code == "unknown_template"
    assert scoped_library.get(added.ref).manifest.title == "Our meme"  # what a worker resolves


def test_adding_and_removing_need_the_places_admin(templates, template_media):
    async def main():
        refusals = []
        for requester, scope in ((MEMBER_A, GUILD_A), (ADMIN_B, GUILD_A), (ADMIN_A, GLOBAL),
                                 (ADMIN_A, Scope("user", "discord", "2"))):
            with pytest.raises(NotAllowedError) as refused:
                await templates.add(requester, template_media, "nope", scope=scope)
            refusals.append(str(refused.value))
        await templates.add(ADMIN_A, template_media, "kept")
        with pytest.raises(NotAllowedError):
            await templates.remove(MEMBER_A, "kept")
        mine = Requester.direct("telegram", "42")
        await templates.add(mine, template_media, "my-own")  # one's own scope, in a private chat
        await templates.add(OPERATOR, template_media, "for-all", scope=GLOBAL)
        return refusals, await templates.visible(MEMBER_A), await templates.visible(mine)

    refusals, member_sees, mine_sees = asyncio.run(main())
    assert refusals[0] == "only an admin of this server can add templates here"
    assert refusals[2] == "only the bot's operator can add templates for everyone"
    assert refusals[3] == "you can only add templates for yourself"
    assert names(member_sees) == {"kept", "for-all"}
    assert names(mine_sees) == {"my-own", "for-all"}


def test_names_are_validated(templates, template_media):
    async def main():
        codes = []
        for name in ("../etc", "UPPER", "a" * 40, "", "has space", "x/y"):
            with pytest.raises(InputError) as refused:
                await templates.add(ADMIN_A, template_media, name)
            codes.append(refused.value.code)
        with pytest.raises(InputError) as missing:
            await templates.remove(ADMIN_A, "never-added")
        return codes, missing.value.code

    codes, missing = asyncio.run(main())
    assert codes == ["bad_name"] * 6 and missing == "unknown_template"


def test_scope_caps_on_count_and_bytes(templates, template_media):
    async def main():
        mine = Requester.direct("discord", "9")
        for name in ("one", "two"):
            await templates.add(mine, template_media, name)
        with pytest.raises(InputError) as by_count:
            await templates.add(mine, template_media, "three")
        await templates.add(ADMIN_A, template_media, "dup")
        with pytest.raises(InputError) as taken:
            await templates.add(ADMIN_A, template_media, "dup")
        templates.caps = type(templates.caps)(max_templates=10, max_bytes=template_media.stat().st_size + 10)
        with pytest.raises(InputError) as by_bytes:
            await templates.add(ADMIN_A, template_media, "too-big")
        return by_count.value, taken.value, by_bytes.value

    by_count, taken, by_bytes = asyncio.run(main())
    assert by_count.code == "quota" and "remove one first" in str(by_count)
    assert taken.code == "name_taken"
    assert by_bytes.code == "quota" and "in all" in str(by_bytes)


def test_an_add_that_fails_midway_leaves_nothing(templates, template_media, scoped_library, database, monkeypatch):
    import memeswap.bot.core.templates as module

    def crash(path):
        raise RuntimeError("power cut after the media was stored")

    monkeypatch.setattr(module, "media_hash", crash)  # fails after library.add renamed the folder

    async def main():
        with pytest.raises(RuntimeError):
            await templates.add(ADMIN_A, template_media, "half")
        async with database.transaction() as session:
            return (await session.scalars(select(CustomTemplate))).all(), (await session.scalars(select(AuditEntry))).all()

    rows, audit = asyncio.run(main())
    assert rows == [] and audit == []
    assert scoped_library.scoped_names(GUILD_A.key) == []


def test_reconcile_removes_a_folder_whose_row_never_committed(templates, template_media, scoped_library):
    # A process that died between renaming the folder into place and committing the row.
    scoped_library.add(template_media, "orphan", scope_key=GUILD_A.key)

    async def main():
        before = await templates.visible(MEMBER_A)
        removed = await templates.reconcile()
        kept = await templates.add(ADMIN_A, template_media, "real")
        return before, removed, kept, await templates.reconcile()

    before, removed, kept, again = asyncio.run(main())
    assert "orphan" not in names(before)  # never visible
    assert removed == 1 and again == 0
    assert scoped_library.scoped_names(GUILD_A.key) == ["real"]


def test_removal_deletes_row_and_media_and_is_audited(templates, template_media, scoped_library, database):
    async def main():
        await templates.add(ADMIN_A, template_media, "short-lived")
        await templates.remove(ADMIN_A, "short-lived")
        async with database.transaction() as session:
            audit = [(a.action, a.scope_key, a.subject) for a in (await session.scalars(
                select(AuditEntry).order_by(AuditEntry.id))).all()]
        return audit, await templates.visible(MEMBER_A)

    audit, seen = asyncio.run(main())
    assert audit == [("template.add", GUILD_A.key, "short-lived"), ("template.remove", GUILD_A.key, "short-lived")]
    assert "short-lived" not in names(seen) and scoped_library.scoped_names(GUILD_A.key) == []


def test_search_ranks_name_then_title_then_tags_and_keeps_one_per_name():
    def info(name, title, tags=(), scope="global", builtin=True):
        return TemplateInfo(name, title, scope, builtin, name, tuple(tags))

    listed = [info("bounce", "Bounce"), info("zoom", "Dramatic Zoom", ["bounce-ish"]),
              info("noir", "Noir", ["black"]), info("bonk", "Bonk", scope="discord-guild-1", builtin=False),
              info("noir", "Our noir", scope="discord-guild-1", builtin=False)]
    assert [t.name for t in search(listed, "bo")] == ["bounce", "bonk", "zoom"]
    assert [t.name for t in search(listed, "BOUNCE")] == ["bounce", "zoom"]  # exact name, then a tag
    assert [t.name for t in search(listed, "dram")] == ["zoom"]  # a word of the title
    assert [t.title for t in search(listed, "noir")] == ["Our noir"]  # the one a pick resolves to
    assert [t.name for t in search(listed, "")] == ["bounce", "zoom", "noir", "bonk"]
    assert len(search(listed * 10, "", limit=2)) == 2
    assert search(listed, "nothing-like-it") == []
