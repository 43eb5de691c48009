"""`memeswap templates`: add, list, show and remove templates."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, TypeVar

import typer

from memeswap.bot.commands.state import (
    OPERATOR,
    CliState,
    check_output,
    out,
    progress_bars,
    refuse_protected_template,
    resolve_template,
    state_of,
    with_database,
)
from memeswap.inference.errors import InputError, NoFaceError
from memeswap.inference.sizes import human_bytes

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from memeswap.bot.core.requesters import Requester, Scope
    from memeswap.bot.core.template_packs import PackTarget
    from memeswap.bot.core.templates import CustomTemplates, TemplateInfo
    from memeswap.inference.templates.packs import PackedTemplate
    from memeswap.inference.templates.preview_sheet import SheetFormat

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, help="Add, list, show and remove templates.")


@app.command("list")
def templates_list(ctx: typer.Context,
                   as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False) -> None:
    """List built-in and added templates."""
    from memeswap.inference.templates.catalog import list_templates

    templates = list_templates(state_of(ctx).settings.templates_dir)  # manifests only: no model loads
    if as_json:
        out.print_json(json.dumps([{**t.manifest.model_dump(), "builtin": t.builtin} for t in templates]))
        return
    for t in templates:
        kind = "built-in" if t.builtin else "added"
        out.print(f"{t.name:<16} {t.manifest.title:<24} {kind:<9} {', '.join(t.manifest.tags)}", highlight=False)


@app.command("show")
def templates_show(ctx: typer.Context, name: str) -> None:
    """Show one template's manifest and its faces."""
    state = state_of(ctx)
    template = state.maker.library.get(name)
    with progress_bars() as progress:
        compiled = resolve_template(state, name, progress)
    from memeswap.inference.media.decode import probe_media
    from memeswap.inference.templates.face_order import numbered_faces

    info = probe_media(template.media_path, state.maker.limits)
    details = {**template.manifest.model_dump(), "builtin": template.builtin, "width": info.width,
               "height": info.height, "frames": compiled.tracks.frame_count,
               "faces": [{"face": number, "first_frame": t.first, "last_frame": t.last,
                          "box": [round(float(v)) for v in t.boxes[0]]}
                         for number, t in enumerate(numbered_faces(compiled.tracks), start=1)]}
    out.print_json(json.dumps(details))


@app.command("add")
def templates_add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A GIF, MP4/WebM, animated WebP or still image.")],
    name: Annotated[str, typer.Option("--name", help="Lowercase letters, digits and dashes.")],
    title: Annotated[Optional[str], typer.Option("--title")] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", help="Repeat for several tags.")] = None,
    caption: Annotated[Optional[str], typer.Option("--caption")] = None,
) -> None:
    """Validate, analyse and add a template."""
    state = state_of(ctx)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    with progress_bars() as progress:
        task = progress.add_task("analysing template", total=None)
        compiled = state.maker.library.add(
            path, name, title=title, tags=tag or [], caption=caption,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
            check_frames=state.nudity_screen())
        try:
            refuse_protected_template(state, compiled)
        except InputError:
            state.maker.library.remove(name)
            raise
    out.print(f"added template '{name}': {compiled.tracks.frame_count} frames, {compiled.face_count} face track(s)")


@app.command("remove")
def templates_remove(ctx: typer.Context, name: str) -> None:
    """Remove an added template."""
    state_of(ctx).maker.library.remove(name)
    out.print(f"removed template '{name}'")


SHEET_FORMATS: dict[str, SheetFormat] = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}
ScopeOption = Annotated[str, typer.Option("--scope", help="global, or a place's scope key such as "
                                                          "discord-guild-123 or telegram-chat--100456.")]


@app.command("preview")
def templates_preview(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--out", "-o", help="A .png or .jpg file.")] = Path("templates.png"),
    scope: ScopeOption = "global",
    page: Annotated[int, typer.Option("--page", min=1, help="Sheets hold MEMESWAP_PREVIEW_TEMPLATES_PER_SHEET.")] = 1,
    analyse: Annotated[bool, typer.Option("--analyse", help="Analyse templates not analysed yet, so their faces "
                                                            "are numbered.")] = False,
) -> None:
    """Write a sheet of numbered thumbnails of the templates usable in SCOPE, in the bots' order."""
    from memeswap.bot.core.template_previews import TemplatePreviews

    fmt = SHEET_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot write a preview sheet as {output.suffix[:20]!r}: name it .png or .jpg")
    check_output(output)
    state = state_of(ctx)
    settings = state.settings
    templates = _visible_in(state, scope)
    previews = TemplatePreviews(state.maker.library, settings.previews_dir, settings.preview_templates_per_sheet,
                                settings.preview_cached_sheets)
    if analyse:
        _analyse(state, templates[(page - 1) * previews.per_sheet:page * previews.per_sheet])
    sheet = previews.sheet_now(templates, page - 1, fmt)
    _write_atomically(output, sheet.data)
    out.print(f"wrote {output}: {sheet.summary}", highlight=False)
    if sheet.unanalysed:
        out.print(f"{sheet.unanalysed} of them not analysed yet, so their faces are not numbered "
                  "(--analyse analyses them)", highlight=False)


def _visible_in(state: CliState, scope_key: str) -> list[TemplateInfo]:
    """The templates a request in `scope_key` sees, in the order the bots number them. The
    built-in and global ones need no store; a place's own are rows in it."""
    from memeswap.bot.assembly import open_database
    from memeswap.bot.core.requesters import Scope
    from memeswap.bot.core.templates import CustomTemplates, added_here_first, shared_templates

    scope = Scope.from_key(scope_key)
    library = state.maker.library
    if scope.kind == "global":
        return added_here_first(shared_templates(library.templates()))
    database = open_database(state.settings)

    async def visible() -> list[TemplateInfo]:
        try:
            await database.migrate()
            return await CustomTemplates(database, library).visible(dataclasses.replace(OPERATOR, scope=scope))
        finally:
            await database.close()

    return added_here_first(with_database(visible))


def _analyse(state: CliState, templates: list[TemplateInfo]) -> None:
    """Compile the templates whose tracks are not cached yet (what a first swap would do)."""
    library = state.maker.library
    with progress_bars() as progress:
        for info in templates:
            task = progress.add_task(f"analysing {info.name}", total=None)
            try:
                library.compile(library.get(info.ref), functools.partial(_advance, progress, task))
            except NoFaceError:
                pass  # shown without face numbers, as in the bots
            progress.remove_task(task)


def _advance(progress: Progress, task: TaskID, done: int, total: int | None) -> None:
    progress.update(task, completed=done, total=total)


def _write_atomically(path: Path, data: bytes) -> None:
    """`data` at `path`, or nothing there: written beside it, then renamed into place."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with temp.open("xb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@app.command("import")
def templates_import(
    ctx: typer.Context,
    pack: Annotated[Path, typer.Argument(help="A zip of NAME/manifest.json and NAME/MEDIA folders.")],
    scope: ScopeOption = "global",
) -> None:
    """Add every template of a pack to SCOPE, each checked as `templates add` checks one, or none."""
    from memeswap.bot.core.requesters import Scope
    from memeswap.bot.core.template_packs import import_pack

    if not pack.is_file():
        raise InputError(f"no such file: {pack}")
    state = state_of(ctx)
    place = Scope.from_key(scope)
    limits = state.settings.pack_limits()
    if place.kind == "global":
        state.protected  # noqa: B018  # loaded before the event loop runs: it opens the store on its own
        names = asyncio.run(import_pack(pack, limits, _GlobalPackTarget(state)))
    else:
        names = _with_custom_templates(state, lambda templates, requester: import_pack(
            pack, limits, _scoped_target(templates, requester, place)), place)
    out.print(f"imported {len(names)} template(s) into {scope}: {', '.join(names)}", highlight=False)


@app.command("export")
def templates_export(
    ctx: typer.Context,
    names: Annotated[Optional[list[str]], typer.Argument(help="Templates to export.")] = None,
    output: Annotated[Path, typer.Option("--out", "-o", help="The pack to write (.zip).")] = Path("templates.zip"),
    scope: ScopeOption = "global",
    everything: Annotated[bool, typer.Option("--all", help="Every template added to SCOPE.")] = False,
) -> None:
    """Write templates of SCOPE (added ones; built-ins are everywhere already) as a pack."""
    from memeswap.bot.core.requesters import Scope
    from memeswap.bot.core.template_packs import global_pack_refs, scoped_pack_refs
    from memeswap.inference.templates.packs import write_pack

    if bool(names) == everything:
        raise InputError("name the templates to export, or give --all (not both)")
    if output.suffix.lower() != ".zip":
        raise InputError("name the pack .zip")
    check_output(output)
    state = state_of(ctx)
    place = Scope.from_key(scope)
    library = state.maker.library
    if place.kind == "global":
        refs = global_pack_refs(library, names or [], everything)
    else:
        refs = _with_custom_templates(state, lambda templates, requester: scoped_pack_refs(
            templates, requester, place, names or [], everything), place)
    if not refs:
        raise InputError(f"no templates added to {scope} yet")
    templates = [library.get(ref) for ref in refs]
    size = sum(t.media_path.stat().st_size for t in templates)
    limits = state.settings.pack_limits()
    if size > limits.max_unpacked_bytes or len(templates) * 2 > limits.max_entries:
        raise InputError(f"{len(templates)} templates of {human_bytes(size)} are more than a pack may hold "
                         "(MEMESWAP_PACK_MAX_*); export fewer at a time")
    temp = output.with_name(f".{output.name}.{secrets.token_hex(4)}.part")
    try:
        write_pack(templates, temp)
        os.replace(temp, output)
    finally:
        temp.unlink(missing_ok=True)
    out.print(f"exported {len(templates)} template(s) to {output}: {', '.join(t.name for t in templates)}",
              highlight=False)


class _GlobalPackTarget:
    """The operator's templates for everyone, added as `templates add` adds one."""

    def __init__(self, state: CliState) -> None:
        self.state = state
        self.library = state.maker.library
        self.check_frames = state.nudity_screen()  # one screen (its model loads once) for the whole pack

    async def taken(self, names: list[str]) -> dict[str, str]:
        from memeswap.bot.core.template_packs import builtin_names

        found = builtin_names(self.library, names)
        added = {t.name for t in self.library.templates() if not t.builtin}
        return {**found, **{name: "already added" for name in names if name in added and name not in found}}

    async def add(self, template: PackedTemplate) -> None:
        manifest = template.manifest
        compiled = self.library.add(template.media, manifest.name, title=manifest.title, tags=manifest.tags,
                                    caption=manifest.caption, check_frames=self.check_frames)
        try:
            refuse_protected_template(self.state, compiled)
        except InputError:
            self.library.remove(manifest.name)
            raise

    async def remove(self, name: str) -> None:
        self.library.remove(name)


def _scoped_target(templates: CustomTemplates, requester: Requester, place: Scope) -> PackTarget:
    from memeswap.bot.core.template_packs import ScopedPackTarget

    return ScopedPackTarget(templates, requester, place)


def _with_custom_templates(state: CliState, work: Callable[[CustomTemplates, Requester], Awaitable[T]],
                           scope: Scope) -> T:
    """`work` with the store's templates (checked as the bots check them: screens, protected
    faces, room per scope) and the operator asking in `scope`."""
    from memeswap.bot.assembly import open_database
    from memeswap.bot.core.heavy_work import HeavyWork
    from memeswap.bot.core.protection import ProtectedFaceList
    from memeswap.bot.core.templates import CustomTemplates, ScopeCaps
    from memeswap.inference.safety.protected_faces import DlibFaceDescriptor

    settings, maker = state.settings, state.maker
    database = open_database(settings)

    async def run() -> T:
        heavy_work = HeavyWork(1, settings.heavy_work_deadline_s, settings.heavy_work_queue_s)
        try:
            await database.migrate()
            protected = ProtectedFaceList(database, DlibFaceDescriptor(), maker.analyser, maker.limits,
                                          heavy_work=heavy_work)
            templates = CustomTemplates(
                database, maker.library, ScopeCaps(settings.templates_per_scope, settings.template_bytes_per_scope),
                nsfw=settings.nsfw_screen(), protected=protected, heavy_work=heavy_work)
            return await work(templates, dataclasses.replace(OPERATOR, scope=scope))
        finally:
            heavy_work.close()
            await database.close()

    return with_database(run)
