"""Custom templates by scope: the use cases every adapter and the CLI share.

A template exists when its row exists. Adding checks there is room, writes the media into
a staging folder and renames it into place (no transaction is open meanwhile), then
inserts the row and commits; a failure at any step undoes the others, and a crash between
the rename and the commit leaves a folder without a row, which `reconcile` (run at
start-up) removes. Readers only see templates through rows, so a half-added template is
never visible.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from memeswap.bot.core.forgetting import ForgetMarks
from memeswap.bot.core.heavy_work import HeavyWork
from memeswap.bot.core.protection import ProtectedFaceList
from memeswap.bot.core.reports import TemplateReports
from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.core.users import user_for
from memeswap.bot.store.database import Database
from memeswap.bot.store.models import AuditEntry, CustomTemplate
from memeswap.inference.errors import InputError
from memeswap.inference.media.limits import Deadline
from memeswap.inference.safety.nsfw import NsfwScreen
from memeswap.inference.safety.protected_faces import ProtectedFaces
from memeswap.inference.safety.template_faces import TemplateFaces
from memeswap.inference.sizes import human_bytes
from memeswap.inference.templates.catalog import Template
from memeswap.inference.templates.compile import media_hash
from memeswap.inference.templates.library import TemplateLibrary
from memeswap.inference.templates.manifest import (
    ONE_OFF_NAME,
    validate_new_template_name,
    validate_template_name,
)

log = logging.getLogger("memeswap.templates")
ONE_OFF_GRACE_S = 3600.0


def is_one_off(ref: str) -> bool:
    """A template stored for one job only (`CustomTemplates.add_one_off`): a reserved name
    in a person's own scope, never a template someone added."""
    scope_key, _, name = ref.rpartition("/")
    return "-user-" in scope_key and ONE_OFF_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class ScopeCaps:
    """How much one scope may add: guilds and chats share these, users get their own."""

    max_templates: int = 50
    max_bytes: int = 200 * 1024 * 1024


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    title: str
    scope_key: str
    builtin: bool
    ref: str  # what a SwapJob's `template` carries
    tags: tuple[str, ...] = ()

    @property
    def added_here(self) -> bool:
        """Added by a guild, chat or person, not built in or the operator's."""
        return not self.builtin and self.scope_key != "global"


def one_per_name(templates: list[TemplateInfo]) -> list[TemplateInfo]:
    """One entry per name, the one a pick by that name resolves to (`visible` lists the
    place's and the person's own after the built-ins, as `resolve` prefers them), at the
    place of the name's first appearance."""
    by_name: dict[str, TemplateInfo] = {}
    for info in templates:
        by_name[info.name] = info
    return list(by_name.values())


def shared_templates(templates: list[Template]) -> list[TemplateInfo]:
    """Built-in and global templates (`TemplateLibrary.templates`), as every place sees them."""
    return [_info(t, Scope("global")) for t in templates]


def added_here_first(templates: list[TemplateInfo]) -> list[TemplateInfo]:
    """One entry per name (the one a pick resolves to); the ones added here first, as they
    are what people came for, then the built-ins: the order of Telegram's template keyboard
    and the numbers of the preview sheet."""
    last_seen = {info.name: i for i, info in enumerate(templates)}
    return sorted(one_per_name(templates), key=lambda info: (not info.added_here, last_seen[info.name]))


def search(templates: list[TemplateInfo], query: str, limit: int = 25) -> list[TemplateInfo]:
    """Templates matching `query`, best first: the name exactly, the name's start, a word
    of the title's start, a tag's start, then anywhere in the name, title or tags. An empty
    query keeps the list's order. One entry per name (the one a pick resolves to)."""
    query = query.strip().lower()
    ranked = []
    for order, info in enumerate(one_per_name(templates)):
        title, tags = info.title.lower(), [t.lower() for t in info.tags]
        if not query:
            score = 0
        elif info.name == query:
            score = 0
        elif info.name.startswith(query):
            score = 1
        elif any(word.startswith(query) for word in title.split()):
            score = 2
        elif any(tag.startswith(query) for tag in tags):
            score = 3
        elif query in info.name or query in title or any(query in tag for tag in tags):
            score = 4
        else:
            continue
        ranked.append((score, order, info))
    return [info for _, _, info in sorted(ranked, key=lambda r: r[:2])[:limit]]


class CustomTemplates:
    def __init__(self, database: Database, library: TemplateLibrary, caps: ScopeCaps = ScopeCaps(),
                 user_caps: ScopeCaps = ScopeCaps(max_templates=10, max_bytes=50 * 1024 * 1024),
                 nsfw: NsfwScreen | None = None, protected: ProtectedFaceList | None = None,
                 heavy_work: HeavyWork | None = None, forget_marks: ForgetMarks | None = None,
                 reports: TemplateReports | None = None) -> None:
        self.database = database
        self.reports = reports
        self.forget_marks = forget_marks or ForgetMarks()
        self.heavy_work = heavy_work or HeavyWork()
        self.library = library
        self.caps = caps
        self.user_caps = user_caps
        self.nsfw = nsfw
        self.protected = protected
        self.template_faces = TemplateFaces(protected.descriptor, library.limits) if protected else None

    async def add(self, requester: Requester, media: Path, name: str, scope: Scope | None = None,
                  title: str | None = None, tags: list[str] | None = None,
                  caption: str | None = None) -> TemplateInfo:
        scope = scope or requester.scope
        size = media.stat().st_size
        began = self.forget_marks.now()
        await self.check_can_add(requester, name, size, scope)
        caps = self.user_caps if scope.kind == "user" else self.caps
        # The heavy work runs outside any transaction: a write transaction held for its
        # seconds would hold the database's write lock (SQLite) and a pooled connection,
        # and other people's writes would time out meanwhile.
        compiled = await self.heavy_work.run(requester.user_key, lambda deadline: self.library.add(
            media, name, title=title, tags=tags, caption=caption, scope_key=_folder_key(scope),
            check_frames=self._nudity_screen(), deadline=deadline))
        stored = compiled.template
        try:
            await self.check_protected(requester, scope, _ref(scope, name))
            async with self.database.transaction() as session:
                self.forget_marks.check(requester.user_key, began)  # a /forget during the work wins
                await self._check_room(session, scope, caps, name, size)  # another add may have come first
                user = await user_for(session, requester)
                session.add(CustomTemplate(
                    scope_key=scope.key, name=name, title=stored.manifest.title, owner_id=user.id,
                    media_sha256=media_hash(stored.media_path), size_bytes=stored.media_path.stat().st_size,
                    frame_count=compiled.tracks.frame_count))
                session.add(AuditEntry(actor_id=user.id, action="template.add", scope_key=scope.key, subject=name))
        except BaseException:
            # (A crash right here leaves a folder without a row: `reconcile` removes it at the next start.)
            await asyncio.to_thread(self.library.remove, _ref(scope, name))
            raise
        return _info(stored, scope)

    async def check_can_add(self, requester: Requester, name: str, size: int | None = None,
                            scope: Scope | None = None) -> None:
        """What an add is refused for before its file is even fetched: the right to add here,
        the name (valid, not reserved, free) and room (count, and bytes from the size the
        platform announces, when it does)."""
        scope = scope or requester.scope
        requester.require_admin(scope, "add templates")
        validate_new_template_name(name)
        caps = self.user_caps if scope.kind == "user" else self.caps
        async with self.database.transaction() as session:
            await self._check_room(session, scope, caps, name, size or 0)

    @staticmethod
    async def _check_room(session, scope: Scope, caps: ScopeCaps, name: str, size: int) -> None:
        count, used = (await session.execute(
            select(func.count(), func.coalesce(func.sum(CustomTemplate.size_bytes), 0))
            .where(CustomTemplate.scope_key == scope.key))).one()
        if count >= caps.max_templates:
            raise InputError(f"this place already has {count} templates, the most it can have; "
                             "remove one first", code="quota")
        if used + size > caps.max_bytes:
            raise InputError(f"templates here may use {human_bytes(caps.max_bytes)} in all and "
                             f"{human_bytes(used)} is used; remove one first", code="quota")
        if await session.scalar(select(CustomTemplate.id).where(CustomTemplate.scope_key == scope.key,
                                                                CustomTemplate.name == name)):
            raise InputError(f"a template named {name!r} already exists here", code="name_taken")

    async def add_one_off(self, requester: Requester, media: Path, name: str) -> str:
        """Screen and compile `media` for one job, in the person's own space and without a
        row (so nobody lists or picks it); returns the job's template ref."""
        ref = _ref(Scope("user", requester.platform, requester.user_id), name)
        await self.heavy_work.run(requester.user_key, lambda deadline: self.library.add(
            media, name, scope_key=ref.partition("/")[0], check_frames=self._nudity_screen(), one_off=True,
            deadline=deadline))
        try:
            await self.check_protected(requester, requester.scope, ref)
        except BaseException:
            await self.remove_one_off(ref)
            raise
        return ref

    def _nudity_screen(self) -> Callable[[list[np.ndarray]], None] | None:
        """What a new template's frames (spread over what was decoded) pass before it is stored.
        Protected faces are checked on its face tracks once it is compiled (`check_protected`)."""
        return self.nsfw.check_template if self.nsfw is not None else None

    async def check_protected(self, requester: Requester, scope: Scope, ref: str) -> None:
        """Refuse a template showing a face that is protected in `scope`: when it is added,
        and again where each swap happens (a person's own template goes wherever they go,
        and lists change after an add). Each face track is described on a few frames."""
        if self.protected is None:
            return
        protected = await self.protected.for_scope(scope)
        if protected.entries:
            await self.heavy_work.run(requester.user_key, lambda deadline: self._check_faces(protected, ref, deadline))

    def _check_faces(self, protected: ProtectedFaces, ref: str, deadline: Deadline) -> None:
        assert self.template_faces is not None, "made with the protected face list that gave `protected`"
        compiled = self.library.compile(self.library.get(ref), deadline=deadline)
        protected.check_template_faces(self.template_faces.describe(compiled, deadline))

    async def remove_one_off(self, ref: str) -> None:
        try:
            await asyncio.to_thread(self.library.remove, ref)
        except InputError:
            log.info("one-off template %s was already gone", ref)

    async def remove(self, requester: Requester, name: str, scope: Scope | None = None) -> None:
        scope = scope or requester.scope
        requester.require_admin(scope, "remove templates")
        validate_template_name(name)
        async with self.database.transaction() as session:
            row = await session.scalar(select(CustomTemplate).where(CustomTemplate.scope_key == scope.key,
                                                                    CustomTemplate.name == name))
            if row is None:
                raise InputError(f"no template named {name!r} here", code="unknown_template")
            user = await user_for(session, requester)
            await session.delete(row)
            session.add(AuditEntry(actor_id=user.id, action="template.remove", scope_key=scope.key, subject=name))
        await self._delete_folder(scope, name)

    async def visible(self, requester: Requester) -> list[TemplateInfo]:
        """Built-in and global templates, then the place's own, then the person's own; none
        that reports hid in the place (`TemplateReports`)."""
        found = shared_templates(await asyncio.to_thread(self.library.templates))
        scopes = [s for s in requester.visible_scopes() if s.kind != "global"]
        async with self.database.transaction() as session:
            rows = (await session.scalars(select(CustomTemplate).where(
                CustomTemplate.scope_key.in_([s.key for s in scopes])).order_by(CustomTemplate.name))).all()
        by_key = {s.key: s for s in scopes}
        for row in rows:
            scope = by_key[row.scope_key]
            found.append(TemplateInfo(row.name, row.title, row.scope_key, False, _ref(scope, row.name)))
        hidden = await self._hidden(requester.scope)
        return [info for info in found if info.ref not in hidden] if hidden else found

    async def resolve(self, requester: Requester, name: str) -> TemplateInfo:
        """The template a request means by `name`: its own user's first, then its place's,
        then global and built-in ones; never another place's, nor one reports hid here."""
        info = await self._resolve(requester, name)
        if info.ref in await self._hidden(requester.scope):
            raise InputError(f"the template {name!r} is hidden here after people reported it, until a "
                             "moderator looks at it", code="hidden_template")
        return info

    async def _hidden(self, scope: Scope) -> set[str]:
        return await self.reports.hidden(scope.key) if self.reports is not None else set()

    async def _resolve(self, requester: Requester, name: str) -> TemplateInfo:
        validate_template_name(name)
        scopes = [s for s in requester.visible_scopes() if s.kind != "global"]
        async with self.database.transaction() as session:
            rows = {row.scope_key: row for row in (await session.scalars(select(CustomTemplate).where(
                CustomTemplate.scope_key.in_([s.key for s in scopes]), CustomTemplate.name == name))).all()}
        for scope in reversed(scopes):
            if scope.key in rows:
                return TemplateInfo(name, rows[scope.key].title, scope.key, False, _ref(scope, name))
        try:
            return _info(await asyncio.to_thread(self.library.get, name), Scope("global"))
        except InputError:
            raise InputError(f"no template named {name!r}; the template list shows the ones you can use",
                             code="unknown_template") from None

    async def reconcile(self) -> int:
        """Remove scoped template folders that have no row (a crash between rename and
        commit); returns how many went."""
        async with self.database.transaction() as session:
            known = set((await session.execute(select(CustomTemplate.scope_key, CustomTemplate.name))).all())
        removed = 0
        for key in await asyncio.to_thread(self.library.scope_keys):
            for name in await asyncio.to_thread(self.library.scoped_names, key):
                if (key, name) not in known and not self._one_off_in_use(key, name):
                    log.warning("removing template folder %s/%s: it has no row (an add that did not finish)", key,
                                name)
                    await asyncio.to_thread(self.library.remove, f"{key}/{name}")
                    removed += 1
        return removed

    def _one_off_in_use(self, key: str, name: str) -> bool:
        """A one-off template younger than an hour may belong to a job another bot process
        (sharing this data folder) is running; older ones are leftovers."""
        if not ONE_OFF_NAME.fullmatch(name):
            return False
        folder = self.library.scope_folder(key) / name
        return time.time() - folder.stat().st_mtime < ONE_OFF_GRACE_S

    async def delete_scope_folders(self, scope: Scope, names: list[str]) -> None:
        for name in names:
            await self._delete_folder(scope, name)

    async def delete_one_offs(self, scope: Scope) -> None:
        """A forgotten person's one-off templates of jobs still running go too."""
        names = await asyncio.to_thread(self.library.scoped_names, scope.key)
        await self.delete_scope_folders(scope, [n for n in names if ONE_OFF_NAME.fullmatch(n)])

    async def _delete_folder(self, scope: Scope, name: str) -> None:
        try:
            await asyncio.to_thread(self.library.remove, _ref(scope, name))
        except InputError:
            log.warning("template folder %s/%s was already gone", scope.key, name)


def _folder_key(scope: Scope) -> str | None:
    return None if scope.kind == "global" else scope.key


def _ref(scope: Scope, name: str) -> str:
    return name if scope.kind == "global" else f"{scope.key}/{name}"


def _info(template: Template, scope: Scope) -> TemplateInfo:
    return TemplateInfo(template.name, template.manifest.title, scope.key, template.builtin,
                        template.name if template.builtin else _ref(scope, template.name),
                        tuple(template.manifest.tags))
