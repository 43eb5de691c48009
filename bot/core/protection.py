"""The protected-face lists as use cases: deployment-wide and per guild or chat, kept in the
store as descriptors (`bot.core.faces` and `bot.core.templates` check selfies and templates
against the list of the place where they are used)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import CursorResult, delete, func, select

from memeswap.bot.core.heavy_work import HeavyWork
from memeswap.bot.core.requesters import GLOBAL, Requester, Scope
from memeswap.bot.core.users import user_for
from memeswap.bot.store.database import Database
from memeswap.bot.store.models import AuditEntry, ProtectedFaceEntry
from memeswap.inference.errors import NoFaceError
from memeswap.inference.faces.analyser import FaceAnalyser
from memeswap.inference.media.decode import load_image
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.safety.protected_faces import (
    DlibFaceDescriptor,
    ProtectedFace,
    ProtectedFaces,
    descriptor_from_bytes,
    descriptor_to_bytes,
)


@dataclass(frozen=True)
class ProtectedLabel:
    """One label of a protected list, as an operator sees it (never the faces themselves)."""

    label: str
    faces: int
    first_added: datetime


async def protected_labels(database: Database, scope: Scope = GLOBAL) -> list[ProtectedLabel]:
    """The scope's labels, with how many faces each holds, oldest first (no model needed)."""
    async with database.transaction() as session:
        rows = (await session.execute(
            select(ProtectedFaceEntry.label, func.count(), func.min(ProtectedFaceEntry.created_at))
            .where(ProtectedFaceEntry.scope_key == scope.key)
            .group_by(ProtectedFaceEntry.label)
            .order_by(func.min(ProtectedFaceEntry.created_at)))).all()
    return [ProtectedLabel(label, int(faces), first) for label, faces, first in rows]


class ProtectedFaceList:
    def __init__(self, database: Database, descriptor: DlibFaceDescriptor, analyser: FaceAnalyser,
                 limits: MediaLimits = MediaLimits(), heavy_work: HeavyWork | None = None) -> None:
        self.database = database
        self.heavy_work = heavy_work or HeavyWork()
        self.descriptor = descriptor
        self.analyser = analyser
        self.limits = limits

    async def add(self, requester: Requester, photo: bytes, label: str, scope: Scope = GLOBAL) -> int:
        """Protect the largest face of `photo` in `scope` (the operator: everywhere; a guild
        or chat admin: there). Only the descriptor is kept, never the photo. Returns how many
        faces the label now holds (a label can hold several photos of one person)."""
        requester.require_admin(scope, "protect faces")
        descriptor = await self.heavy_work.run(
            requester.user_key, lambda _deadline: self._describe_largest(photo))
        async with self.database.transaction() as session:
            user = await user_for(session, requester)
            session.add(ProtectedFaceEntry(scope_key=scope.key, label=label[:100],
                                           descriptor=descriptor_to_bytes(descriptor),
                                           descriptor_kind=self.descriptor.name, added_by=user.id))
            session.add(AuditEntry(actor_id=user.id, action="protected.add", scope_key=scope.key, subject=label[:100]))
            await session.flush()
            held = await session.scalar(select(func.count()).where(ProtectedFaceEntry.scope_key == scope.key,
                                                                   ProtectedFaceEntry.label == label[:100]))
        return int(held or 0)

    async def remove(self, requester: Requester, label: str, scope: Scope = GLOBAL) -> int:
        requester.require_admin(scope, "change protected faces")
        async with self.database.transaction() as session:
            user = await user_for(session, requester)
            deleted = await session.execute(delete(ProtectedFaceEntry).where(
                ProtectedFaceEntry.scope_key == scope.key, ProtectedFaceEntry.label == label))
            assert isinstance(deleted, CursorResult), "a DELETE's result is a CursorResult (typed as a Result)"
            gone = deleted.rowcount
            if gone:
                session.add(AuditEntry(actor_id=user.id, action="protected.remove", scope_key=scope.key,
                                       subject=label[:100]))
        return gone

    async def for_scope(self, scope: Scope) -> ProtectedFaces:
        """The deployment's list plus the scope's own."""
        keys = {GLOBAL.key, scope.key}
        async with self.database.transaction() as session:
            rows = (await session.scalars(select(ProtectedFaceEntry).where(
                ProtectedFaceEntry.scope_key.in_(keys),
                ProtectedFaceEntry.descriptor_kind == self.descriptor.name))).all()
        return ProtectedFaces(self.descriptor, [ProtectedFace(r.label, descriptor_from_bytes(r.descriptor))
                                                for r in rows])

    def _describe_largest(self, photo: bytes) -> np.ndarray:
        image = load_image(photo, self.limits)
        faces = self.analyser.analyse(image)
        if not faces:
            raise NoFaceError("no face found in the photo to protect")
        self.descriptor.prepare()
        return self.descriptor.describe(image, max(faces, key=lambda f: f.area))
