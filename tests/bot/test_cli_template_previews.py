"""`memeswap templates preview` as an operator runs it: a real process writes a real image,
one tile per template, in pages of MEMESWAP_PREVIEW_TEMPLATES_PER_SHEET."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memeswap.inference.templates.preview_sheet import BACKGROUND, BADGE, TILE_BACKGROUND, SheetLayout

LAYOUT = SheetLayout()


def run(args: list[str], data: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memeswap", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MEMESWAP_DATA_DIR": str(data), **(env or {})})


def builtin_count(data: Path, cwd: Path) -> int:
    listed = run(["templates", "list", "--json"], data, cwd)
    assert listed.returncode == 0, listed.stderr
    return len(json.loads(listed.stdout))


def tile_boxes(count: int) -> list[tuple[int, int, int, int]]:
    """Where each thumbnail of a sheet of `count` tiles sits."""
    columns, _ = LAYOUT.grid(count)
    boxes = []
    for index in range(count):
        x = LAYOUT.gap + (index % columns) * (LAYOUT.tile + LAYOUT.gap)
        y = LAYOUT.gap + (index // columns) * (LAYOUT.tile + LAYOUT.label_height + LAYOUT.gap)
        boxes.append((x, y, x + LAYOUT.tile, y + LAYOUT.tile))
    return boxes


def test_the_sheet_is_a_png_with_one_picture_per_template(tmp_path):
    data = tmp_path / "data"
    count = builtin_count(data, tmp_path)
    result = run(["templates", "preview", "--out", "sheet.png"], data, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"wrote sheet.png: Templates 1–{count}." in result.stdout
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.format == "PNG"
        assert sheet.size == LAYOUT.size(count, footer=False)
        pixels = np.asarray(sheet.convert("RGB")).astype(int)
    for box in tile_boxes(count):  # every tile shows a picture, not an empty cell
        x0, y0, x1, y1 = box
        assert pixels[y0:y1, x0:x1].std() > 20, box
    columns, rows = LAYOUT.grid(count)
    if count % columns:  # the cell after the last tile is left empty
        x0 = LAYOUT.gap + (count % columns) * (LAYOUT.tile + LAYOUT.gap)
        y0 = LAYOUT.gap + (rows - 1) * (LAYOUT.tile + LAYOUT.label_height + LAYOUT.gap)
        assert (pixels[y0:y0 + LAYOUT.tile, x0:x0 + LAYOUT.tile] == BACKGROUND).all()
    assert not list(tmp_path.glob(".sheet.png*"))  # written beside, then renamed


def test_pages_hold_the_configured_number_of_templates(tmp_path):
    data = tmp_path / "data"
    count = builtin_count(data, tmp_path)
    per_sheet = 4
    pages = -(-count // per_sheet)
    env = {"MEMESWAP_PREVIEW_TEMPLATES_PER_SHEET": str(per_sheet)}
    last = run(["templates", "preview", "-o", "last.jpg", "--page", str(pages)], data, tmp_path, env)
    beyond = run(["templates", "preview", "-o", "beyond.jpg", "--page", "99"], data, tmp_path, env)
    assert last.returncode == 0, last.stderr
    on_last = count - (pages - 1) * per_sheet
    assert f"Templates {count - on_last + 1}–{count} of {count} (page {pages} of {pages})." in last.stdout
    with Image.open(tmp_path / "last.jpg") as sheet:
        assert sheet.format == "JPEG" and sheet.size == LAYOUT.size(on_last, footer=True)
    assert beyond.returncode == 0 and (tmp_path / "beyond.jpg").read_bytes() == (tmp_path / "last.jpg").read_bytes()


def test_faces_are_numbered_once_a_template_is_analysed(tmp_path):
    """duo has two faces; its page (one template per sheet) is analysed with --analyse."""
    data = tmp_path / "data"
    listed = json.loads(run(["templates", "list", "--json"], data, tmp_path).stdout)
    page = [t["name"] for t in listed].index("duo") + 1
    env = {"MEMESWAP_PREVIEW_TEMPLATES_PER_SHEET": "1"}
    plain = run(["templates", "preview", "-o", "plain.png", "--page", str(page)], data, tmp_path, env)
    numbered = run(["templates", "preview", "-o", "numbered.png", "--page", str(page), "--analyse"], data, tmp_path,
                   env)
    assert plain.returncode == 0 and numbered.returncode == 0, plain.stderr + numbered.stderr
    assert "not analysed yet" in plain.stdout and "not analysed yet" not in numbered.stdout

    def badge_pixels(name: str) -> int:
        with Image.open(tmp_path / name) as sheet:
            x0, y0, x1, y1 = tile_boxes(1)[0]
            thumbnail = np.asarray(sheet.convert("RGB"))[y0:y1, x0:x1].astype(int)
        return int((np.abs(thumbnail - BADGE).sum(axis=2) < 30).sum())

    assert badge_pixels("plain.png") < 20 < badge_pixels("numbered.png")


@pytest.mark.parametrize("args, expected", [
    (["--out", "sheet.gif"], "name it .png or .jpg"),
    (["--scope", "discord-server-1"], "unknown scope 'discord-server-1'"),
    (["--out", "no/such/sheet.png"], "output folder does not exist"),
])
def test_a_bad_option_is_one_clear_line(args, expected, tmp_path):
    result = run(["templates", "preview", *args], tmp_path / "data", tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.gif")) and not (tmp_path / "sheet.png").exists()


def test_a_template_whose_media_is_damaged_gets_an_empty_tile(template_media, tmp_path):
    data = tmp_path / "data"
    added = run(["templates", "add", str(template_media), "--name", "broken"], data, tmp_path)
    assert added.returncode == 0, added.stderr
    media = data / "templates" / "broken" / "template.mp4"
    media.write_bytes(media.read_bytes()[:200])  # damaged on disk after it was added
    count = builtin_count(data, tmp_path)
    result = run(["templates", "preview", "-o", "sheet.png"], data, tmp_path)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.size == LAYOUT.size(count, footer=False)
        pixels = np.asarray(sheet.convert("RGB")).astype(int)
    x0, y0, x1, y1 = tile_boxes(count)[count - 1]  # the added template comes after the built-ins here
    assert (pixels[y0:y1, x0:x1] == TILE_BACKGROUND).all()  # an empty tile, still numbered and named below
