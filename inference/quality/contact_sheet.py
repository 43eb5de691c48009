"""Contact sheets: a row of template frames above the same frames of the output, so a person
can see at a glance what a swap did, on the frames where it is hardest.

The columns are picked before anything is decoded, from what the compiled tracks (or a corpus
case's truth) say about each frame: the most turned face, the most occluded one, a frame
where the detector lost the face; the rest are spread evenly over the clip. Only the picked
frames are kept while the template and the output stream past, so a long template costs no
more memory than its sheet.

The PNG says which template frames its columns show (text chunk `memeswap-frames`, comma
separated), and `sheet_layout` gives where each cell is, so a test can check a sheet against
the frames it shows.
"""

import io
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from memeswap.inference.faces import mesh
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import EncodedMedia, write_atomically
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.quality.regions import face_hull_mask
from memeswap.inference.templates.compile import TemplateTracks
from memeswap.inference.templates.library import CompiledTemplate

CELL_HEIGHT = 200  # pixels of one frame on the sheet
TITLE_HEIGHT = 28
LABEL_HEIGHT = 34  # two lines of the column's label, above its template frame
GAP = 4
BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
FRAMES_KEY = "memeswap-frames"
STRONG_YAW = 15.0  # degrees: a turn worth a column of its own
SHOWN_YAW = 8.0  # degrees: a turn worth mentioning in a label (the mesh's estimate wavers by a few)
STRONG_OCCLUSION = 0.05  # share of the face hidden: an occlusion worth a column of its own


@dataclass(frozen=True)
class SheetPick:
    index: int  # the template frame
    label: str  # why it is on the sheet, and what is true of it


@dataclass(frozen=True)
class SheetLayout:
    width: int
    height: int
    cell_width: int
    cell_height: int
    columns: int

    def cell(self, column: int, row: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a frame: row 0 the template, row 1 the output."""
        x0 = GAP + column * (self.cell_width + GAP)
        y0 = TITLE_HEIGHT + LABEL_HEIGHT + row * (self.cell_height + GAP)
        return x0, y0, x0 + self.cell_width, y0 + self.cell_height


def sheet_layout(columns: int, frame_width: int, frame_height: int, cell_height: int = CELL_HEIGHT) -> SheetLayout:
    cell_width = max(1, int(round(frame_width * cell_height / frame_height)))
    return SheetLayout(width=GAP + columns * (cell_width + GAP),
                       height=TITLE_HEIGHT + LABEL_HEIGHT + 2 * cell_height + 2 * GAP,
                       cell_width=cell_width, cell_height=cell_height, columns=columns)


def spread_picks(total: int, count: int, hardest: Sequence[SheetPick], describe: Callable[[int], str]
                 ) -> list[SheetPick]:
    """The `hardest` frames (at most `count`, in the order given), then frames spread evenly
    over the clip up to `count`, in frame order; `describe(index)` labels the spread ones."""
    count = max(1, min(count, total))
    chosen: dict[int, str] = {}
    for pick in hardest:
        if len(chosen) < count and pick.index not in chosen:
            chosen[pick.index] = pick.label
    for index in np.linspace(0, total - 1, count).round().astype(int):
        if len(chosen) >= count:
            break
        chosen.setdefault(int(index), describe(int(index)))
    index = 0
    while len(chosen) < count:  # the spread landed on hardest frames; fill from the start
        chosen.setdefault(index, describe(index))
        index += 1
    return [SheetPick(index, chosen[index]) for index in sorted(chosen)]


def picks_from_tracks(tracks: TemplateTracks, count: int) -> list[SheetPick]:
    """Columns for any compiled template: the most turned face (from the mesh), the frame where
    a face was least seen (an occlusion mask where the tracks have one, else a frame where the
    detector lost the face and the track was filled in), then evenly spread frames."""
    total = tracks.frame_count
    yaw = np.zeros(total, np.float32)
    hidden = np.zeros(total, np.float32)
    missed = np.zeros(total, bool)
    for track in tracks.tracks:
        visible = getattr(track, "visible", None)  # per-frame visibility, where the compiler records it
        for i, frame in enumerate(track.frames):
            if track.landmarks is not None and track.landmarks.shape[1] == 478:
                yaw[frame] = max(yaw[frame], abs(mesh.head_yaw_degrees(track.landmarks[i])))
            if visible is not None:
                hidden[frame] = max(hidden[frame], 1.0 - float(np.mean(visible[i] > 0)))
            if track.scores[i] == 0:
                missed[frame] = True

    def describe(index: int) -> str:
        parts = [f"yaw {yaw[index]:.0f}°"] if yaw[index] >= SHOWN_YAW else []
        if hidden[index] >= 0.005:
            parts.append(f"{100 * hidden[index]:.0f}% hidden")
        if missed[index]:
            parts.append("face not detected")
        return " · ".join(parts)

    hardest = []
    if total and np.max(yaw) >= STRONG_YAW:
        hardest.append(SheetPick(int(np.argmax(yaw)), "most turned"))
    if total and np.max(hidden) >= STRONG_OCCLUSION:
        hardest.append(SheetPick(int(np.argmax(hidden)), "most hidden"))
    elif missed.any():
        hardest.append(SheetPick(int(np.flatnonzero(missed)[0]), "face lost"))
    return _labelled(spread_picks(total, count, hardest, describe), hardest, describe)


def picks_from_truth(faces: np.ndarray, yaw: np.ndarray, occluders: np.ndarray, count: int) -> list[SheetPick]:
    """Columns for a corpus case, from its truth: the most occluded frame, the most turned one,
    then evenly spread frames."""
    total = faces.shape[1]
    hidden = np.array([float((occluders[i] & (hull := face_hull_mask(faces[0, i], occluders[i].shape))).sum())
                       / max(1, int(hull.sum())) for i in range(total)])
    turned = np.abs(yaw).max(axis=0)

    def describe(index: int) -> str:
        parts = [f"yaw {turned[index]:.0f}°"] if turned[index] >= SHOWN_YAW else []
        if hidden[index] >= 0.005:
            parts.append(f"{100 * hidden[index]:.0f}% hidden")
        return " · ".join(parts)

    hardest = []
    if np.max(hidden) >= STRONG_OCCLUSION:
        hardest.append(SheetPick(int(np.argmax(hidden)), "most hidden"))
    if np.max(turned) >= STRONG_YAW:
        hardest.append(SheetPick(int(np.argmax(turned)), "most turned"))
    return _labelled(spread_picks(total, count, hardest, describe), hardest, describe)


def _labelled(picks: list[SheetPick], hardest: list[SheetPick], describe: Callable[[int], str]) -> list[SheetPick]:
    """Each column's label: why it was picked (when it was), then what is true of the frame."""
    why: dict[int, str] = {}
    for pick in hardest:
        why.setdefault(pick.index, pick.label)
    return [SheetPick(p.index, f"#{p.index} {why[p.index]}\n{describe(p.index)}" if p.index in why
                      else f"#{p.index}\n{describe(p.index)}") for p in picks]


def keep_frames(frames: Iterable[np.ndarray], indices: Iterable[int]) -> dict[int, np.ndarray]:
    """The frames at `indices` out of a stream, which is closed (stopping its decoder) once the
    last of them is seen."""
    wanted = set(indices)
    kept: dict[int, np.ndarray] = {}
    last = max(wanted, default=-1)
    stream = iter(frames)
    try:
        for index, frame in enumerate(stream):
            if index in wanted:
                kept[index] = frame
            if index >= last:
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    return kept


def media_frames(media: EncodedMedia, limits: MediaLimits = MediaLimits()) -> Iterator[np.ndarray]:
    """The frames of an encoded output, decoded as a template would be (from a temporary file)."""
    with tempfile.TemporaryDirectory(prefix="memeswap-frames-") as folder:
        path = Path(folder) / f"output.{media.format}"
        path.write_bytes(media.data)
        yield from read_frames(path, limits)


def sheet_of_swap(template: CompiledTemplate, output: EncodedMedia, count: int, title: str,
                  limits: MediaLimits = MediaLimits()) -> tuple[np.ndarray, list[SheetPick]]:
    """The contact sheet of one finished swap: `count` columns picked from the template's
    tracks, the template's frames decoded as the swap decoded them."""
    picks = picks_from_tracks(template.tracks, count)
    indices = [p.index for p in picks]
    frames = keep_frames(read_frames(template.template.media_path, limits, max_side=limits.max_template_side), indices)
    swapped = keep_frames(media_frames(output, limits), indices)
    return render_sheet(title, picks, frames, swapped), picks


def render_sheet(title: str, picks: Sequence[SheetPick], template: dict[int, np.ndarray],
                 output: dict[int, np.ndarray], cell_height: int = CELL_HEIGHT) -> np.ndarray:
    """The sheet as an RGB array: the title, then one column per pick (its label, the template
    frame, the output frame). A frame missing from `output` (a shorter output) is left dark."""
    first = template[picks[0].index]
    layout = sheet_layout(len(picks), first.shape[1], first.shape[0], cell_height)
    sheet = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    title_font = ImageFont.load_default(size=15)
    label_font = ImageFont.load_default(size=12)
    draw.text((GAP + 2, 6), title, fill=TEXT, font=title_font)
    for column, pick in enumerate(picks):
        x0, y0, _, _ = layout.cell(column, 0)
        draw.multiline_text((x0 + 2, TITLE_HEIGHT + 1), pick.label, fill=TEXT, font=label_font, spacing=2)
        for row, frames in enumerate((template, output)):
            frame = frames.get(pick.index)
            if frame is None:
                continue
            cx0, cy0, cx1, cy1 = layout.cell(column, row)
            shown = cv2.resize(frame, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_AREA)
            sheet.paste(Image.fromarray(shown), (cx0, cy0))
    return np.asarray(sheet)


def write_sheet(path: Path, sheet: np.ndarray, picks: Sequence[SheetPick]) -> None:
    """The sheet as a PNG (written atomically), naming the frames it shows."""
    info = PngInfo()
    info.add_text(FRAMES_KEY, ",".join(str(p.index) for p in picks))
    buffer = io.BytesIO()
    Image.fromarray(sheet).save(buffer, format="PNG", pnginfo=info, optimize=False)
    write_atomically(path, buffer.getvalue())
