"""`memeswap swap`, `inspect` and `demo`: a selfie into a template, to a file."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from memeswap.bot.commands.state import (
    CliState,
    FormatChoice,
    check_face_choice,
    check_output,
    err,
    out,
    output_format,
    progress_bars,
    refuse_protected_selfie,
    refuse_protected_template,
    resolve_template,
    state_of,
)
from memeswap.inference.errors import InputError
from memeswap.inference.swappers.registry import SWAPPERS

if TYPE_CHECKING:
    import numpy as np
    from rich.progress import Progress

    from memeswap.inference.media.encode import OutputFormat
    from memeswap.inference.pipeline import FaceMap, SwapResult
    from memeswap.inference.templates.library import CompiledTemplate

app = typer.Typer()


SwapperChoice = Enum("SwapperChoice", {name: name for name in ("auto", *SWAPPERS)}, type=str)  # type: ignore[misc]


def _run_job(state: CliState, selfie_image: np.ndarray | FaceMap, template: CompiledTemplate, fmt: OutputFormat,
             max_bytes: Optional[int], faces: str, progress: Progress) -> SwapResult:
    task = progress.add_task("swapping", total=template.tracks.frame_count)
    return state.maker.make(selfie_image, template, fmt, max_bytes, faces,
                            progress=lambda done, total: progress.update(task, completed=done, total=total))


def _swap_to_file(state: CliState, selfie_image: np.ndarray | FaceMap, template: CompiledTemplate, output: Path,
                  fmt: OutputFormat, max_bytes: Optional[int], faces: str, progress: Progress) -> SwapResult:
    result = _run_job(state, selfie_image, template, fmt, max_bytes, faces, progress)
    from memeswap.inference.media.encode import write_atomically

    write_atomically(output, result.media.data)
    return result


FACE_MAP_HELP = ("Different faces for a template's faces: one entry per face, in the order `templates show NAME` "
                 "lists them (track 0 first) and previews number them, each an image path or _ to keep that face "
                 "(faces past the end are kept too), e.g. alice.jpg,_,bob.jpg. Instead of SELFIE.")


@app.command()
def swap(
    ctx: typer.Context,
    template: Annotated[str, typer.Option("--template", "-t", help="Template name or a media file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")],
    selfie: Annotated[Optional[Path], typer.Argument(help="A photo with your face (or use --face-map).")] = None,
    fmt: Annotated[Optional[FormatChoice], typer.Option(
        "--format", help="Output format (default: from the file name, else gif).")] = None,
    max_bytes: Annotated[Optional[int], typer.Option("--max-bytes", min=1, help="Byte budget for the output.")] = None,
    face: Annotated[str, typer.Option("--face", help="Template faces to swap: all, largest or a number.")] = "all",
    face_map: Annotated[Optional[str], typer.Option("--face-map", help=FACE_MAP_HELP)] = None,
    swapper: Annotated[Optional[SwapperChoice], typer.Option(
        "--swapper", help="A swapper's name, or auto (the first whose models verify).")] = None,
) -> None:
    """Swap the face in SELFIE into every frame of a template (or several faces, with --face-map)."""
    state = state_of(ctx)
    if swapper is not None:
        state.settings = state.settings.model_copy(update={"swapper": swapper.value})
    check_face_choice(face)
    entries = _face_map_entries(selfie, face, face_map)
    check_output(output)
    chosen = output_format(output, fmt)
    sources = _load_face_map(state, entries) if entries is not None else _load_selfie(state, selfie)
    with progress_bars() as progress:
        compiled = resolve_template(state, template, progress)
        refuse_protected_template(state, compiled)
        result = _swap_to_file(state, sources, compiled, output, chosen, max_bytes, face, progress)
    for notice in result.notices:
        err.print(f"note: {notice}")
    media = result.media
    out.print(f"wrote {output} ({media.format}, {media.width}x{media.height}, {media.frame_count} frames, "
              f"{len(media.data) / 1024:.0f} KiB) in {result.timings['total']:.1f} s")


def _face_map_entries(selfie: Optional[Path], face: str, face_map: Optional[str]) -> list[str | None] | None:
    """The --face-map's entries (None: keep that face), or None without one; one line when
    the options do not go together."""
    if face_map is None:
        if selfie is None:
            raise InputError("give a SELFIE photo, or --face-map for several faces")
        return None
    if selfie is not None:
        raise InputError("give a SELFIE or --face-map, not both (a --face-map entry can be that photo)")
    if face != "all":
        raise InputError("--face and --face-map both choose faces; use one of them")
    from memeswap.bot.core.face_maps import parse_face_map

    return parse_face_map(face_map)


def _load_selfie(state: CliState, selfie: Optional[Path]) -> np.ndarray:
    assert selfie is not None, "_face_map_entries wants a SELFIE without a --face-map"
    if not selfie.is_file():
        raise InputError(f"no such file: {selfie}")
    from memeswap.inference.media.decode import load_image

    image = load_image(selfie, state.maker.limits)
    refuse_protected_selfie(state, image)
    return image


def _load_face_map(state: CliState, entries: list[str | None]) -> FaceMap:
    """Each photo the map names, read and checked once (the first missing one is named)."""
    from memeswap.bot.core.face_maps import shown
    from memeswap.inference.pipeline import FaceMap

    paths = list(dict.fromkeys(entry for entry in entries if entry is not None))
    for path in paths:
        if not Path(path).is_file():
            raise InputError(f"no such file in --face-map: {shown(path)}")
    images = tuple(_load_selfie(state, Path(path)) for path in paths)
    return FaceMap(images, tuple(None if entry is None else paths.index(entry) for entry in entries))


@app.command()
def inspect(
    ctx: typer.Context,
    selfie: Annotated[Path, typer.Argument(help="A photo with your face.")],
    template: Annotated[str, typer.Argument(help="Template name or a media file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the PNG.")] = Path("sheet.png"),
    frames: Annotated[int, typer.Option("--frames", min=1, max=24, help="Columns: frames shown.")] = 6,
    fmt: Annotated[FormatChoice, typer.Option("--format", help="Output format swapped to.")] = FormatChoice("mp4"),
    face: Annotated[str, typer.Option("--face", help="Template faces to swap: all, largest or a number.")] = "all",
) -> None:
    """Swap SELFIE into TEMPLATE and write a contact sheet: template frames above the output's,
    the most turned and most hidden faces among them."""
    from memeswap.inference.quality.contact_sheet import sheet_of_swap, write_sheet

    state = state_of(ctx)
    check_face_choice(face)
    if output.suffix.lower() != ".png":
        raise InputError(f"the contact sheet is a PNG; name it with .png, not {output.name[-40:]!r}")
    check_output(output)
    if not selfie.is_file():
        raise InputError(f"no such file: {selfie}")
    from memeswap.inference.media.decode import load_image

    limits = state.maker.limits
    image = load_image(selfie, limits)
    refuse_protected_selfie(state, image)
    with progress_bars() as progress:
        compiled = resolve_template(state, template, progress)
        refuse_protected_template(state, compiled)
        result = _run_job(state, image, compiled, str(fmt.value), None, face, progress)
    title = (f"{selfie.name[-60:]} into {Path(template).name[-60:]} ({fmt.value}, {compiled.tracks.frame_count} "
             "frames); top: template, bottom: output")
    sheet, picks = sheet_of_swap(compiled, result.media, frames, title, limits)
    write_sheet(output, sheet, picks)
    out.print(f"wrote {output}: frames {', '.join(str(p.index) for p in picks)} of {compiled.tracks.frame_count}, "
              f"{sheet.shape[1]}x{sheet.shape[0]}", highlight=False)


@app.command()
def demo(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("demo.gif"),
    template: Annotated[str, typer.Option("--template", "-t")] = "deal-with-it",
) -> None:
    """Swap a sample face (scikit-image's public-domain astronaut portrait) into a built-in template."""
    from memeswap.inference.samples import sample_selfie

    state = state_of(ctx)
    check_output(output)
    selfie, credit = sample_selfie(state.maker.analyser)
    with progress_bars() as progress:
        compiled = resolve_template(state, template, progress)
        result = _swap_to_file(state, selfie, compiled, output, output_format(output, None), None, "all", progress)
    media = result.media
    out.print(f"wrote {output}: {credit} swapped into '{template}' "
              f"({media.frame_count} frames, {len(media.data) / 1024:.0f} KiB, {result.timings['total']:.1f} s)")


