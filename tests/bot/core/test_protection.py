"""The responsible-use screens through the real detectors: nudity screening of new
templates (nudenet) and protected faces (dlib descriptors), deployment-wide and per group."""

import asyncio

import cv2
import pytest
from sqlalchemy import select

from memeswap.bot.core.faces import SavedFaces
from memeswap.bot.core.protection import ProtectedFaceList
from memeswap.bot.core.requesters import GLOBAL, NotAllowedError, Requester, Scope
from memeswap.bot.core.templates import CustomTemplates
from memeswap.bot.store.models import CustomTemplate, ProtectedFaceEntry
from memeswap.inference.errors import InputError
from memeswap.inference.safety.nsfw import NsfwScreen
from memeswap.inference.safety.protected_faces import DlibFaceDescriptor

OPERATOR = Requester("cli", "operator", GLOBAL, is_operator=True)
GROUP = Scope("chat", "telegram", "-100777")
GROUP_ADMIN = Requester("telegram", "5", GROUP, is_scope_admin=True)
GROUP_MEMBER = Requester("telegram", "6", GROUP)
ELSEWHERE = Requester.direct("telegram", "6")


def png(rgb) -> bytes:
    return cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()


@pytest.fixture(scope="session")
def descriptor() -> DlibFaceDescriptor:
    d = DlibFaceDescriptor()
    d.prepare()
    return d


@pytest.fixture(scope="session")
def nsfw() -> NsfwScreen:
    screen = NsfwScreen()
    screen.prepare()
    return screen


@pytest.fixture
def protected(database, descriptor, analyser) -> ProtectedFaceList:
    return ProtectedFaceList(database, descriptor, analyser)


def test_ordinary_templates_pass_the_nudity_screen_and_a_blocking_class_refuses(database, scoped_library,
                                                                                 template_media, nsfw):
    strict = NsfwScreen(blocked={"FACE_FEMALE"})  # a stand-in class, to run the refusal through the detector

    async def main():
        ok = await CustomTemplates(database, scoped_library, nsfw=nsfw).add(GROUP_ADMIN, template_media, "fine")
        with pytest.raises(InputError) as refused:
            await CustomTemplates(database, scoped_library, nsfw=strict).add(GROUP_ADMIN, template_media, "no")
        async with database.transaction() as session:
            return ok, refused.value, (await session.scalars(select(CustomTemplate.name))).all()

    ok, refused, names = asyncio.run(main())
    assert ok.name == "fine" and names == ["fine"]
    assert refused.code == "nsfw"
    assert str(refused) == "this template can't be used here: it looks like it contains nudity. Pick another one."
    assert scoped_library.scoped_names(GROUP.key) == ["fine"]


def test_a_protected_face_cannot_be_swapped_in_or_out(database, scoped_library, template_media, protected, analyser,
                                                      astronaut, group):
    image, faces = group
    from memeswap.inference.samples import crop_face

    stranger = png(crop_face(image, faces[2]))

    async def main():
        with pytest.raises(NotAllowedError):
            await protected.add(GROUP_MEMBER, png(astronaut), "nasa portrait", scope=GROUP)
        await protected.add(OPERATOR, png(astronaut), "nasa portrait")  # everywhere
        templates = CustomTemplates(database, scoped_library, protected=protected)
        with pytest.raises(InputError) as template_refused:
            await templates.add(GROUP_ADMIN, template_media, "astro")  # the template's face is protected
        faces_store = SavedFaces(database, analyser, protected=protected)
        with pytest.raises(InputError) as selfie_refused:
            await faces_store.save(ELSEWHERE, png(astronaut))
        await faces_store.save(ELSEWHERE, stranger)  # anyone else is fine
        async with database.transaction() as session:
            stored = (await session.scalars(select(ProtectedFaceEntry))).all()
        return template_refused.value, selfie_refused.value, stored

    template_refused, selfie_refused, stored = asyncio.run(main())
    assert template_refused.code == selfie_refused.code == "protected_face"
    assert "nasa" not in str(template_refused) + str(selfie_refused)  # the label is for operators only
    assert scoped_library.scoped_names(GROUP.key) == []
    assert [(e.scope_key, e.label, len(e.descriptor)) for e in stored] == [("global", "nasa portrait", 512)]


def test_a_groups_protected_faces_apply_in_that_group_only(database, protected, analyser, group):
    image, faces = group
    from memeswap.inference.samples import crop_face

    person = png(crop_face(image, faces[4]))

    async def main():
        await protected.add(GROUP_ADMIN, person, "our member", scope=GROUP)
        store = SavedFaces(database, analyser, protected=protected)
        with pytest.raises(InputError) as refused:
            await store.save(GROUP_MEMBER, person)
        await store.save(ELSEWHERE, person)  # the same person in a private chat: not this group's rule
        removed = await protected.remove(GROUP_ADMIN, "our member", scope=GROUP)
        await store.save(GROUP_MEMBER, person)
        return refused.value, removed

    refused, removed = asyncio.run(main())
    assert refused.code == "protected_face" and removed == 1
