"""Preview sheets of the templates a place can use: the use case `/templates` (both bots) and
`memeswap templates preview` share.

A sheet numbers templates in the order it is given (the bots give the keyboard's order,
`added_here_first`), at most `per_sheet` of them: more make further pages. Face numbers come
from tracks already compiled (at add, or a template's first swap); a template not analysed
yet is shown without them, so a chat command never runs a face model. Sheets are cached on
disk, keyed by what they show (each template's number, name, title, media hash and whether
its tracks were known), so a chat command renders a sheet once until the place's templates
change; the folder keeps the `max_cached` most recently used, in a folder per place whose own
templates they show (one sheet per page and format there: a newer one replaces it), and
`forget_scope` deletes a place's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from memeswap.bot.core.heavy_work import HeavyWork
from memeswap.bot.core.templates import TemplateInfo
from memeswap.inference.errors import InputError
from memeswap.inference.media.limits import Deadline
from memeswap.inference.templates.compile import media_hash
from memeswap.inference.templates.library import TemplateLibrary
from memeswap.inference.templates.preview_sheet import (
    SHEET_VERSION,
    SheetFormat,
    SheetLayout,
    SheetTile,
    render_sheet,
)

log = logging.getLogger("memeswap.preview")
SUFFIXES: dict[SheetFormat, str] = {"png": "png", "jpeg": "jpg"}
_KNOWN_HASHES = 4096  # media hashes remembered by (path, size, mtime), so a cache hit reads no media


@dataclass(frozen=True)
class PreviewSheet:
    data: bytes
    format: SheetFormat
    shown: list[TemplateInfo]  # on this sheet, numbered from `first`
    first: int
    total: int  # templates given, over all pages
    page: int  # from 0
    pages: int
    unanalysed: int  # templates of several faces may be among these: their faces are not numbered yet

    @property
    def filename(self) -> str:
        return f"templates-{self.page + 1}.{SUFFIXES[self.format]}"

    @property
    def summary(self) -> str:
        """"Templates 1–40 of 55 (page 1 of 2)." or "Templates 1–11." """
        span = f"Templates {self.first}–{self.first + len(self.shown) - 1}" if self.shown else "No templates"
        return span + (f" of {self.total} (page {self.page + 1} of {self.pages})." if self.pages > 1 else ".")


@dataclass(frozen=True)
class _Planned:
    infos: list[TemplateInfo]
    tiles: list[SheetTile]  # tracks not loaded yet
    digests: list[str]  # of each tile's media
    known_tracks: list[bool]
    place: str  # whose own templates the sheet shows (`_place`): its folder in the cache
    key: str
    page: int
    pages: int
    total: int


def _place(shown: list[TemplateInfo]) -> str:
    """The scopes whose own templates a sheet shows, joined by "+" ("shared" for built-in and
    global ones only): the sheet's folder, so `forget_scope` finds it."""
    return "+".join(sorted({info.scope_key for info in shown if info.added_here})) or "shared"


class TemplatePreviews:
    def __init__(self, library: TemplateLibrary, folder: Path, per_sheet: int = 40, max_cached: int = 64,
                 heavy_work: HeavyWork | None = None, layout: SheetLayout = SheetLayout()) -> None:
        self.library = library
        self.folder = folder
        self.per_sheet = per_sheet
        self.max_cached = max_cached
        self.heavy_work = heavy_work or HeavyWork()
        self.layout = layout
        self._hashes: dict[tuple[str, int, int], str] = {}

    async def sheet(self, owner: str, templates: list[TemplateInfo], page: int = 0,
                    fmt: SheetFormat = "jpeg") -> PreviewSheet:
        """Page `page` (clamped) of the sheet of `templates`, numbered in their order, from the
        cache when it is there; else rendered in the heavy-work pool on behalf of `owner`."""
        plan = await asyncio.to_thread(self._plan, templates, page, fmt)
        cached = await asyncio.to_thread(self._cached, plan, fmt)
        if cached is not None:
            return cached
        return await self.heavy_work.run(owner, lambda deadline: self._render(plan, fmt, deadline))

    def sheet_now(self, templates: list[TemplateInfo], page: int = 0, fmt: SheetFormat = "png") -> PreviewSheet:
        """`sheet`, in this thread (the command line)."""
        plan = self._plan(templates, page, fmt)
        return self._cached(plan, fmt) or self._render(plan, fmt, Deadline())

    def _plan(self, templates: list[TemplateInfo], page: int, fmt: SheetFormat) -> _Planned:
        pages = max(1, -(-len(templates) // self.per_sheet))
        page = min(max(page, 0), pages - 1)
        first = page * self.per_sheet
        infos = templates[first:first + self.per_sheet]
        tiles, digests, known, described = [], [], [], []
        version = self.library.analyser.version  # a name, not a model load
        for number, info in enumerate(infos, start=first + 1):
            try:
                template = self.library.get(info.ref)
                digest = self._media_hash(template.media_path)
            except InputError as error:  # removed meanwhile, or its files are gone: an empty tile keeps the numbers
                log.warning("no thumbnail for template %s: %s", info.ref, error)
                tiles.append(SheetTile(number, info.name, info.title, None, None))
                digests.append("")
                known.append(False)
                described.append([number, info.name, info.title, None])
                continue
            has_tracks = self.library.cache.path_for(digest, version).exists()
            manifest = template.manifest
            tiles.append(SheetTile(number, info.name, info.title, template.media_path, None, template.overlay_path,
                                   manifest.caption, manifest.caption_position))
            digests.append(digest)
            known.append(has_tracks)
            described.append([number, info.name, info.title, digest, has_tracks, manifest.overlay, manifest.caption,
                              manifest.caption_position])
        layout = [self.layout.tile, self.layout.columns, self.layout.gap, self.layout.label_size]
        key = hashlib.sha256(json.dumps([SHEET_VERSION, fmt, layout, version, page, pages, len(templates),
                                         described]).encode()).hexdigest()[:32]
        return _Planned(infos, tiles, digests, known, _place(infos), key, page, pages, len(templates))

    def _path(self, plan: _Planned, fmt: SheetFormat) -> Path:
        return self.folder / plan.place / f"{plan.page}-{plan.key}.{SUFFIXES[fmt]}"

    def forget_scope(self, scope_key: str) -> None:
        """Delete every cached sheet showing templates of `scope_key` (a person who asked to
        be forgotten, whose own templates may show them)."""
        if not self.folder.is_dir():
            return
        for place in self.folder.iterdir():
            if place.is_dir() and scope_key in place.name.split("+"):
                shutil.rmtree(place, ignore_errors=True)

    def _sheet(self, plan: _Planned, fmt: SheetFormat, data: bytes) -> PreviewSheet:
        return PreviewSheet(data, fmt, plan.infos, plan.page * self.per_sheet + 1, plan.total, plan.page, plan.pages,
                            unanalysed=plan.known_tracks.count(False))

    def _cached(self, plan: _Planned, fmt: SheetFormat) -> PreviewSheet | None:
        path = self._path(plan, fmt)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return self._sheet(plan, fmt, data)

    def _render(self, plan: _Planned, fmt: SheetFormat, deadline: Deadline) -> PreviewSheet:
        version = self.library.analyser.version
        tiles = []
        for tile, digest, known in zip(plan.tiles, plan.digests, plan.known_tracks):
            tracks = self.library.cache.load(digest, version) if known else None
            tiles.append(dataclasses.replace(tile, tracks=tracks))
        sheet = self._sheet(plan, fmt, b"")
        footer = sheet.summary if plan.pages > 1 else None
        data = render_sheet(tiles, self.layout, self.library.limits, fmt, footer, deadline)
        self._store(self._path(plan, fmt), data)
        return self._sheet(plan, fmt, data)

    def _store(self, path: Path, data: bytes) -> None:
        """Write the sheet, and drop the place's older sheet of the same page and format: it
        may show a template removed since."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        page = path.name.partition("-")[0]
        for older in path.parent.glob(f"{page}-*{path.suffix}"):
            if older != path:
                older.unlink(missing_ok=True)
        self._evict(keep=path)

    def _evict(self, keep: Path) -> None:
        """The least recently used sheets out beyond `max_cached`, and the folders left empty."""
        entries = []
        for path in self.folder.glob("*/*"):
            if path.suffix in (".png", ".jpg") and path != keep:
                with contextlib.suppress(FileNotFoundError):
                    entries.append((path.stat().st_mtime_ns, path))
        for _, path in sorted(entries)[:max(0, len(entries) + 1 - self.max_cached)]:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when empty

    def _media_hash(self, path: Path) -> str:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise InputError(f"the media of template {path.parent.name[:40]!r} is missing") from None
        known = (str(path), stat.st_size, stat.st_mtime_ns)
        digest = self._hashes.get(known)
        if digest is None:
            if len(self._hashes) >= _KNOWN_HASHES:
                self._hashes.clear()
            digest = self._hashes[known] = media_hash(path)
        return digest
