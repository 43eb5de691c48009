"""Saved faces and forgetting a user.

Saving keeps only what a swap needs: a crop around the face (the face and a margin, never
the rest of the photo), its landmarks in crop pixels, and the embedding when the analyser
gives one. The photo itself is not stored.

A person keeps up to `max_per_user` faces under names they choose (`me` when they name
none: a friend who agreed, a second look of their own); a swap without a selfie uses the
default face, `me`, or when there is none the face saved first.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image
from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from memeswap.bot.core.face_maps import shown
from memeswap.bot.core.forgetting import ForgetMarks, ForgetReport
from memeswap.bot.core.heavy_work import HeavyWork
from memeswap.bot.core.protection import ProtectedFaceList
from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.core.templates import CustomTemplates
from memeswap.bot.core.users import find_user, user_for
from memeswap.bot.store.database import Database
from memeswap.bot.store.models import (
    AuditEntry,
    CustomTemplate,
    IssuedMeme,
    ProtectedFaceEntry,
    SavedFace,
    TemplateReport,
    UsageEvent,
    User,
)
from memeswap.inference.errors import InputError
from memeswap.inference.faces import mesh
from memeswap.inference.faces.analyser import FaceAnalyser
from memeswap.inference.faces.face import face_crop_box
from memeswap.inference.faces.human_check import HumanFaceCheck
from memeswap.inference.faces.selfie import pick_selfie_face
from memeswap.inference.media.decode import load_image
from memeswap.inference.media.limits import MediaLimits

_FACE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
DEFAULT_FACE = "me"  # the name of a face saved without one, and the face a swap uses by default
MARGIN = 0.6  # of the face's size, on each side: enough for the swap's blend, not the whole photo


def face_name(typed: str) -> str:
    """A face's name as typed, lowercased; refused unless it is 1-32 letters, digits and
    dashes. The refusal quotes at most 40 characters of it (`shown`)."""
    name = (typed or "").strip().lower()
    if not _FACE_NAME.fullmatch(name):
        raise InputError(f"invalid face name {shown(typed)}: use 1-32 lowercase letters, digits and dashes, "
                         "starting with a letter or digit", code="bad_name")
    return name


@dataclass(frozen=True)
class SavedFaceInfo:
    name: str
    width: int
    height: int


class SavedFaces:
    def __init__(self, database: Database, analyser: FaceAnalyser, limits: MediaLimits = MediaLimits(),
                 max_per_user: int = 5, protected: ProtectedFaceList | None = None,
                 max_yaw_degrees: float | None = None, human_check: HumanFaceCheck | None = None,
                 forget_marks: ForgetMarks | None = None,
                 heavy_work: HeavyWork | None = None) -> None:
        """`max_yaw_degrees`: the swapper's limit on a turned head, checked when a selfie
        arrives rather than after a job was queued (None: the swapper has none).
        `human_check`: the process's shared one (a new one is loaded when not given)."""
        self.human_check = human_check or HumanFaceCheck()
        self.forget_marks = forget_marks or ForgetMarks()
        self.database = database
        self.heavy_work = heavy_work or HeavyWork()
        self.max_yaw_degrees = max_yaw_degrees
        self.analyser = analyser
        self.limits = limits
        self.max_per_user = max_per_user
        self.protected = protected

    async def save(self, requester: Requester, photo: bytes, name: str = DEFAULT_FACE) -> SavedFaceInfo:
        """Save (or replace) the face in `photo` under `name`; the protected-face list of
        the place where it is saved applies, as it does again wherever it is swapped."""
        name = face_name(name)
        began = self.forget_marks.now()
        protected = await self.protected.for_scope(requester.scope) if self.protected else None
        crop, landmarks, embedding = await self.heavy_work.run(
            requester.user_key, lambda _deadline: self._extract(photo, protected))
        png = cv2.imencode(".png", crop[:, :, ::-1])[1].tobytes()
        async with self.database.transaction() as session:
            self.forget_marks.check(requester.user_key, began)  # a /forget during the analysis wins
            user = await user_for(session, requester)
            row = await session.scalar(select(SavedFace).where(SavedFace.user_id == user.id, SavedFace.name == name))
            if row is None:
                count = (await session.execute(select(func.count()).where(SavedFace.user_id == user.id))).scalar_one()
                if count >= self.max_per_user:
                    raise InputError(f"you have {count} saved faces, the most you can keep; delete one first "
                                     "(or save under the name of one you have to replace it)", code="quota")
                row = SavedFace(user_id=user.id, name=name)
                session.add(row)
            row.crop_png, row.landmarks, row.analyser = png, landmarks.astype("<f4").tobytes(), self.analyser.version
            row.embedding = None if embedding is None else embedding.astype("<f4").tobytes()
            session.add(AuditEntry(actor_id=user.id, action="face.save", scope_key=Scope(
                "user", requester.platform, requester.user_id).key, subject=name))
        return SavedFaceInfo(name, crop.shape[1], crop.shape[0])

    async def check(self, requester: Requester, photo: bytes) -> None:
        """The checks a selfie passes before templates are offered for it: it decodes within
        the limits, it shows a face, and that face is not protected where it is asked."""
        protected = await self.protected.for_scope(requester.scope) if self.protected else None
        await self.heavy_work.run(requester.user_key, lambda _deadline: self._extract(photo, protected))

    async def list(self, requester: Requester) -> list[SavedFaceInfo]:
        async with self.database.transaction() as session:
            user = await find_user(session, requester)
            if user is None:
                return []
            rows = (await session.scalars(select(SavedFace).where(SavedFace.user_id == user.id)
                                          .order_by(SavedFace.name))).all()
        return [SavedFaceInfo(r.name, *_image_size(r.crop_png)) for r in rows]

    async def load(self, requester: Requester, name: str | None = None) -> bytes:
        """The saved crop as PNG, ready to be a job's selfie; `name` None: the default face."""
        return (await self.load_named(requester, [name]))[0]

    async def load_named(self, requester: Requester, names: Sequence[str | None]) -> Sequence[bytes]:
        """The crops of several saved faces, in the order asked (None: the default face).
        An unknown name is refused in one line naming the first one asked that is not saved."""
        wanted = [None if name is None else face_name(name) for name in names]
        async with self.database.transaction() as session:
            user = await find_user(session, requester)
            rows = {} if user is None else await _crops(session, user)
        if not rows:
            raise InputError("you have no saved face; send a selfie first", code="no_saved_face")
        default = DEFAULT_FACE if DEFAULT_FACE in rows else next(iter(rows))
        for name in wanted:
            if name is not None and name not in rows:
                raise InputError(f"you have no saved face named {shown(name)}; yours: {', '.join(sorted(rows))}",
                                 code="unknown_face")
        return [rows[name or default] for name in wanted]

    async def delete(self, requester: Requester, name: str = DEFAULT_FACE) -> bool:
        name = face_name(name)
        async with self.database.transaction() as session:
            user = await find_user(session, requester)
            if user is None:
                return False
            deleted = await session.execute(delete(SavedFace).where(SavedFace.user_id == user.id,
                                                                    SavedFace.name == name))
            assert isinstance(deleted, CursorResult), "a DELETE's result is a CursorResult (typed as a Result)"
            gone = deleted.rowcount
            if gone:
                session.add(AuditEntry(actor_id=user.id, action="face.delete", scope_key=Scope(
                    "user", requester.platform, requester.user_id).key, subject=name))
        return bool(gone)

    def _extract(self, photo: bytes, protected) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        image = load_image(photo, self.limits)
        face, _ = pick_selfie_face(image, self.analyser, self.human_check)
        if self.max_yaw_degrees is not None and face.landmarks is not None and face.landmarks.shape[0] >= 468:
            mesh.require_frontal(face.landmarks, self.max_yaw_degrees)
        if protected is not None:
            protected.check_selfie(image, [face])
        x0, y0, x1, y1 = face_crop_box(image, face, MARGIN)
        points = face.landmarks if face.landmarks is not None else face.kps
        landmarks = points[:, :2] - np.array([x0, y0], np.float32)
        return np.ascontiguousarray(image[y0:y1, x0:x1]), landmarks, face.embedding


async def forget_user(database: Database, templates: CustomTemplates, requester: Requester) -> ForgetReport:
    """Erase everything stored about the requester: the user row and, through the foreign
    keys, saved faces and usage; their own (user-scope) templates with their media; their
    name on templates they added to communities and on audit entries (those stay, without
    them). Returns what went."""
    own = Scope("user", requester.platform, requester.user_id)
    async with database.transaction() as session:
        user = await find_user(session, requester)
        if user is None:
            return ForgetReport()
        saved_faces = (await session.execute(select(func.count()).where(SavedFace.user_id == user.id))).scalar_one()
        usage_events = (await session.execute(select(func.count()).where(UsageEvent.user_id == user.id))).scalar_one()
        own_templates = list((await session.scalars(select(CustomTemplate.name)
                                                    .where(CustomTemplate.scope_key == own.key))).all())
        await session.execute(delete(CustomTemplate).where(CustomTemplate.scope_key == own.key))
        await session.execute(delete(AuditEntry).where(AuditEntry.scope_key == own.key))
        await session.execute(delete(ProtectedFaceEntry).where(ProtectedFaceEntry.scope_key == own.key))
        await session.execute(delete(IssuedMeme).where(IssuedMeme.scope_key == own.key))
        await session.execute(delete(TemplateReport).where(TemplateReport.scope_key == own.key))
        await session.delete(user)  # ON DELETE CASCADE / SET NULL does the rest
    await templates.delete_scope_folders(own, own_templates)
    await templates.delete_one_offs(own)
    return ForgetReport(True, saved_faces=saved_faces, templates=len(own_templates), usage_events=usage_events)


async def _crops(session: AsyncSession, user: User) -> dict[str, bytes]:
    """A person's saved crops by name, the one saved first first."""
    rows = (await session.execute(select(SavedFace.name, SavedFace.crop_png).where(SavedFace.user_id == user.id)
                                  .order_by(SavedFace.created_at, SavedFace.id))).all()
    return {name: png for name, png in rows}


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header alone (Pillow decodes lazily)."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size
