"""Saved faces keep a crop, never the photo; forgetting a user leaves nothing of them in
any table, on both backends."""

import asyncio
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from memeswap.bot.core.faces import SavedFaces, forget_user
from memeswap.bot.core.forgetting import ForgetReport
from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.core.usage import SwapQuota
from memeswap.bot.store.models import Base, User
from memeswap.inference.errors import InputError, NoFaceError
from memeswap.inference.media.decode import load_image

ALICE = Requester.direct("telegram", "1001")
ALICE_IN_GUILD = Requester("telegram", "1001", Scope("chat", "telegram", "-100500"), is_scope_admin=True)
BOB = Requester.direct("telegram", "1002")


@pytest.fixture
def photo(group) -> bytes:
    """The whole group photo, as a user would send it: the largest face gets saved."""
    image, _ = group
    return cv2.imencode(".jpg", image[:, :, ::-1])[1].tobytes()


@pytest.fixture
def second_photo(astronaut) -> bytes:
    return cv2.imencode(".jpg", astronaut[:, :, ::-1])[1].tobytes()


@pytest.fixture
def faces(database, analyser) -> SavedFaces:
    return SavedFaces(database, analyser, max_per_user=2)


def test_saving_keeps_a_crop_of_the_face_not_the_photo(faces, photo, group, analyser):
    async def main():
        info = await faces.save(ALICE, photo)
        return info, await faces.load(ALICE), await faces.list(ALICE), await faces.list(BOB)

    info, png, listed, bobs = asyncio.run(main())
    image, found = group
    crop = load_image(png)
    assert crop.shape[0] * crop.shape[1] < 0.1 * image.shape[0] * image.shape[1]
    largest = max(found, key=lambda f: f.area)
    assert crop.shape[1] < 3 * largest.width  # the face and a margin
    again = analyser.analyse(crop)
    assert len(again) == 1  # one face, ready to be a job's selfie
    assert listed == [info] and bobs == []


def test_faces_are_listed_deleted_and_capped(faces, photo):
    async def main():
        await faces.save(ALICE, photo, "one")
        await faces.save(ALICE, photo, "two")
        await faces.save(ALICE, photo, "two")  # replacing is not a new face
        with pytest.raises(InputError) as capped:
            await faces.save(ALICE, photo, "three")
        with pytest.raises(InputError) as named:
            await faces.save(ALICE, photo, "../x")
        deleted = await faces.delete(ALICE, "one"), await faces.delete(ALICE, "one")
        with pytest.raises(InputError) as missing:
            await faces.load(ALICE, "one")
        return capped.value, named.value, deleted, missing.value, await faces.list(ALICE)

    capped, named, deleted, missing, left = asyncio.run(main())
    assert capped.code == "quota" and named.code == "bad_name" and missing.code == "unknown_face"
    assert str(missing) == "you have no saved face named 'one'; yours: two"
    assert deleted == (True, False)
    assert [f.name for f in left] == ["two"]


def test_the_default_face_is_me_else_the_first_saved_and_names_are_checked(faces, photo, second_photo):
    async def main():
        with pytest.raises(InputError) as none_yet:
            await faces.load(ALICE)
        await faces.save(ALICE, second_photo, "ana")
        await faces.save(ALICE, photo, "Bo")  # typed with a capital: names are lowercase
        first = await faces.load(ALICE)
        await faces.delete(ALICE, "ana")
        await faces.save(ALICE, second_photo)  # "me"
        crops = await faces.load_named(ALICE, ["bo", None, "me"])
        with pytest.raises(InputError) as unknown:
            await faces.load_named(ALICE, ["bo", "zed", "ana"])
        with pytest.raises(InputError) as long_name:
            await faces.save(ALICE, photo, "x" * 500)
        with pytest.raises(InputError) as underscore:
            await faces.load_named(ALICE, ["_"])
        return none_yet.value, first, crops, unknown.value, long_name.value, underscore.value, await faces.list(ALICE)

    none_yet, first, crops, unknown, long_name, underscore, listed = asyncio.run(main())
    assert none_yet.code == "no_saved_face"
    assert first != crops[0]  # without "me", the face saved first ("ana"), not "bo"
    assert crops[1] == crops[2] != crops[0]  # no name: "me"
    assert unknown.code == "unknown_face" and str(unknown) == "you have no saved face named 'zed'; yours: bo, me"
    assert long_name.code == "bad_name" and "x" * 40 + "…" in str(long_name) and "x" * 41 not in str(long_name)
    assert underscore.code == "bad_name"
    assert [f.name for f in listed] == ["bo", "me"]


def test_a_photo_without_a_face_is_refused(faces):
    blank = cv2.imencode(".png", np.full((200, 200, 3), 90, np.uint8))[1].tobytes()
    with pytest.raises(NoFaceError):
        asyncio.run(faces.save(ALICE, blank))


def test_the_daily_swap_quota(database):
    quota = SwapQuota(database, per_day=2)
    now = datetime.now(UTC)

    async def main():
        await quota.spend(ALICE, now - timedelta(hours=30))  # yesterday's: does not count
        left = [await quota.spend(ALICE, now), await quota.spend(ALICE, now)]
        with pytest.raises(InputError) as refused:
            await quota.spend(ALICE, now)
        return left, refused.value, await quota.spend(BOB, now)

    left, refused, bob_left = asyncio.run(main())
    assert left == [1, 0] and refused.code == "quota" and bob_left == 1


def test_forget_me_leaves_nothing_about_the_user(database, faces, photo, templates, template_media):
    async def main():
        await faces.save(ALICE, photo)
        await faces.save(ALICE, photo, "ana")  # every one of her faces goes
        await SwapQuota(database).spend(ALICE)
        await templates.add(ALICE, template_media, "alice-own")  # her own scope
        await templates.add(ALICE_IN_GUILD, template_media, "group-meme")  # the group's, added by her
        await faces.save(BOB, photo)
        async with database.transaction() as session:
            alice_id = (await session.scalar(select(User.id).where(User.platform_user_id == "1001")))
        report = await forget_user(database, templates, ALICE)
        rows = {}
        async with database.transaction() as session:
            for table in Base.metadata.sorted_tables:
                rows[table.name] = [dict(r._mapping) for r in (await session.execute(select(table))).all()]
        return alice_id, report, rows, await templates.visible(ALICE_IN_GUILD), await faces.list(BOB)

    alice_id, report, rows, group_sees, bobs = asyncio.run(main())
    assert report == ForgetReport(True, saved_faces=2, usage_events=1, templates=1)
    own_scope = Scope("user", "telegram", "1001").key
    for table, table_rows in rows.items():
        for row in table_rows:
            values = set(map(str, row.values()))
            assert "1001" not in values and own_scope not in values, (table, row)
            for column in ("user_id", "owner_id", "actor_id", "added_by"):
                assert row.get(column) != alice_id, (table, row)
    assert [r["platform_user_id"] for r in rows["users"]] == ["1002"]
    # the group keeps its template and its history, without her name on them
    assert [(r["name"], r["owner_id"]) for r in rows["custom_templates"]] == [("group-meme", None)]
    assert {(r["action"], r["actor_id"]) for r in rows["audit_log"] if r["subject"] == "group-meme"} == {
        ("template.add", None)}
    assert "group-meme" in {t.name for t in group_sees}
    assert templates.library.scoped_names(own_scope) == []  # her template's media is gone too
    assert [f.name for f in bobs] == ["me"]  # nobody else is touched
    assert asyncio.run(forget_user(database, templates, ALICE)) == ForgetReport()
