"""`memeswap templates`: add, list, show and remove templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from memeswap.bot.commands.state import out, progress_bars, refuse_protected_template, resolve_template, state_of
from memeswap.inference.errors import InputError

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

    info = probe_media(template.media_path, state.maker.limits)
    details = {**template.manifest.model_dump(), "builtin": template.builtin, "width": info.width,
               "height": info.height, "frames": compiled.tracks.frame_count,
               "faces": [{"track": i, "first_frame": t.first, "last_frame": t.last}
                         for i, t in enumerate(compiled.tracks.tracks)]}
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


