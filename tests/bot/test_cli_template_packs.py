"""`memeswap templates import` and `export` as an operator runs them: a pack round-trips
between scopes, and a hostile or faulty pack is one line and adds nothing."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from memeswap.inference.media.decode import read_frames
from memeswap.inference.templates.preview_sheet import SheetLayout

SCOPE = "telegram-chat--100456"


def run(args: list[str], data: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memeswap", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MEMESWAP_DATA_DIR": str(data), **env})


def manifest(name: str, media: str = "template.mp4", **fields) -> str:
    return json.dumps({"name": name, "title": name.title(), "fps": 12, "media": media, **fields})


def pack(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes | str]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def added_folders(data: Path) -> list[str]:
    """Template folders the data folder holds (for everyone, and in each scope's folder),
    hidden ones (an add under way) too."""
    root = data / "templates"
    if not root.is_dir():
        return []
    places = [root] + [p for p in (root / "scoped").glob("*") if p.is_dir()]
    return sorted(str(t.relative_to(root)) for place in places for t in place.iterdir()
                  if t.is_dir() and t != root / "scoped")


def test_export_then_import_into_another_scope_round_trips(template_media, tmp_path):
    data, other = tmp_path / "data", tmp_path / "other"
    added = run(["templates", "add", str(template_media), "--name", "my-clip", "--title", "My clip",
                 "--tag", "mine", "--tag", "short", "--caption", "HELLO"], data, tmp_path)
    assert added.returncode == 0, added.stderr
    exported = run(["templates", "export", "my-clip", "-o", "pack.zip"], data, tmp_path)
    assert exported.returncode == 0, exported.stderr
    imported = run(["templates", "import", "pack.zip", "--scope", SCOPE], data, tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert f"imported 1 template(s) into {SCOPE}: my-clip" in imported.stdout
    back = run(["templates", "export", "--all", "--scope", SCOPE, "-o", "back.zip"], data, tmp_path)
    assert back.returncode == 0, back.stderr
    again = run(["templates", "import", "back.zip"], other, tmp_path)
    assert again.returncode == 0, again.stderr
    shown = json.loads(run(["templates", "show", "my-clip"], other, tmp_path).stdout)
    sheet = run(["templates", "preview", "--scope", SCOPE, "-o", "scope.png"], data, tmp_path)

    def manifest_and_frames(zip_path: Path) -> tuple[dict, int]:
        with zipfile.ZipFile(zip_path) as archive:
            assert sorted(archive.namelist()) == ["my-clip/manifest.json", "my-clip/template.mp4"]
            fields = json.loads(archive.read("my-clip/manifest.json"))
            media = tmp_path / f"{zip_path.stem}.mp4"
            media.write_bytes(archive.read("my-clip/template.mp4"))
        return fields, len(list(read_frames(media)))

    first, first_frames = manifest_and_frames(tmp_path / "pack.zip")
    second, second_frames = manifest_and_frames(tmp_path / "back.zip")
    kept = ("name", "title", "tags", "caption", "caption_position", "fps", "loop", "media")
    assert {k: first[k] for k in kept} == {k: second[k] for k in kept}
    assert first["title"] == "My clip" and first["tags"] == ["mine", "short"] and first["caption"] == "HELLO"
    assert first_frames == second_frames == 8
    assert shown["frames"] == 8 and shown["title"] == "My clip" and shown["builtin"] is False
    assert sheet.returncode == 0 and "Templates 1–" in sheet.stdout
    builtins = len(json.loads(run(["templates", "list", "--json"], other, tmp_path).stdout)) - 1
    with Image.open(tmp_path / "scope.png") as image:  # the scope's own template, then the built-ins
        assert image.size == SheetLayout().size(builtins + 1, footer=False)
    shutil.rmtree(data / "templates" / "scoped" / SCOPE / "my-clip")  # its row stays: a tile without a picture
    gone = run(["templates", "preview", "--scope", SCOPE, "-o", "gone.png"], data, tmp_path)
    assert gone.returncode == 0, gone.stderr
    with Image.open(tmp_path / "gone.png") as image:
        assert image.size == SheetLayout().size(builtins + 1, footer=False)


def bad_entries(template_media: Path) -> dict[str, tuple[list, str]]:
    clip = template_media.read_bytes()
    symlink = zipfile.ZipInfo("link/template.mp4")
    symlink.external_attr = (stat.S_IFLNK | 0o777) << 16
    return {
        "path traversal": ([("../evil/manifest.json", manifest("evil"))], "not a plain relative path"),
        "absolute path": ([("/etc/manifest.json", manifest("etc"))], "is not a relative path"),
        "backslashes": ([("a\\..\\..\\manifest.json", manifest("a"))], "is not a relative path"),
        "symbolic link": ([("link/manifest.json", manifest("link")), (symlink, "/etc/passwd")], "symbolic link"),
        "nested folders": ([("a/b/manifest.json", manifest("a"))], "is not NAME/manifest.json or NAME/MEDIA"),
        "a name clashing with a built-in": ([("bounce/manifest.json", manifest("bounce")),
                                             ("bounce/template.mp4", clip)], "these names are taken: bounce (built-in)"),
        "a bad folder name": ([("Bad Name/manifest.json", manifest("Bad Name"))], "invalid template name"),
        "a manifest naming another template": ([("a/manifest.json", manifest("b")), ("a/template.mp4", clip)],
                                               "names 'b'"),
        "a manifest that is not JSON": ([("a/manifest.json", "{not json"), ("a/template.mp4", clip)],
                                        "manifest of 'a' is not valid"),
        "media the manifest does not name": ([("a/manifest.json", manifest("a")), ("a/template.mp4", clip),
                                              ("a/extra.sh", "#!/bin/sh")], "has 'extra.sh'"),
        "no media": ([("a/manifest.json", manifest("a"))], "lacks the media its manifest names"),
        "an entry larger than an entry may be": ([("big/manifest.json", manifest("big")),
                                                  ("big/template.mp4", bytes(51 * 1024 * 1024))],
                                                 "unpacks to 51.0 MB, more than the 50.0 MB an entry may"),
        "too many entries": ([(f"t{i}/manifest.json", manifest(f"t{i}")) for i in range(201)],
                             "201 entries, more than the 200"),
    }


@pytest.mark.parametrize("case", ["path traversal", "absolute path", "backslashes", "symbolic link", "nested folders",
                                  "a name clashing with a built-in", "a bad folder name",
                                  "a manifest naming another template", "a manifest that is not JSON",
                                  "media the manifest does not name", "no media",
                                  "an entry larger than an entry may be", "too many entries"])
def test_a_hostile_pack_is_one_line_and_adds_nothing(case, template_media, tmp_path):
    entries, expected = bad_entries(template_media)[case]
    pack(tmp_path / "pack.zip", entries)
    result = run(["templates", "import", "pack.zip"], tmp_path / "data", tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: refused the pack: ") and expected in line and line.endswith("nothing was added")
    assert len(line) < 400  # nothing of the pack echoed at length
    assert added_folders(tmp_path / "data") == []
    assert not (tmp_path / "evil").exists() and not Path("/etc/manifest.json").exists()


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    """Thirteen entries of 40 MiB of zeros (a few hundred kB packed); and one entry whose
    header claims less than it holds."""
    zeros = bytes(40 * 1024 * 1024)
    bomb = pack(tmp_path / "bomb.zip", [(f"b{i}/manifest.json", manifest(f"b{i}")) for i in range(13)]
                + [(f"b{i}/template.mp4", zeros) for i in range(13)])
    assert bomb.stat().st_size < 2 * 1024 * 1024
    liar = tmp_path / "liar.zip"
    pack(liar, [("liar/manifest.json", manifest("liar")), ("liar/template.mp4", zeros)])
    raw = bytearray(liar.read_bytes())
    directory = raw.rfind(b"PK\x01\x02")  # the media's central directory record: claim 1000 bytes
    raw[directory + 24:directory + 28] = (1000).to_bytes(4, "little")
    liar.write_bytes(bytes(raw))
    refused = run(["templates", "import", "bomb.zip"], tmp_path / "data", tmp_path)
    lied = run(["templates", "import", "liar.zip"], tmp_path / "data", tmp_path)
    assert refused.returncode == 2 and "it unpacks to more than the 500.0 MB a pack may" in refused.stderr
    assert lied.returncode == 2 and "damaged" in lied.stderr, lied.stderr
    assert added_folders(tmp_path / "data") == []


@pytest.mark.parametrize("scope", ["global", SCOPE])
def test_one_bad_template_among_good_ones_adds_none(scope, template_media, tmp_path):
    """"no-face" (a still without a face) comes after "good-one" and "good-two", which were
    added, then taken back."""
    clip = template_media.read_bytes()
    blank = cv2.imencode(".png", np.full((240, 240, 3), 200, np.uint8))[1].tobytes()
    pack(tmp_path / "pack.zip", [
        ("good-one/manifest.json", manifest("good-one")), ("good-one/template.mp4", clip),
        ("good-two/manifest.json", manifest("good-two")), ("good-two/template.mp4", clip),
        ("no-face/manifest.json", manifest("no-face", "still.png")), ("no-face/still.png", blank)])
    data = tmp_path / "data"
    result = run(["templates", "import", "pack.zip", "--scope", scope], data, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "its template 'no-face' was refused: no human face found" in line and line.endswith("nothing was added")
    assert added_folders(data) == []
    left = run(["templates", "export", "--all", "--scope", scope, "-o", "left.zip"], data, tmp_path)
    assert left.returncode == 2 and f"no templates added to {scope} yet" in left.stderr
    assert "good-one" not in run(["templates", "list"], data, tmp_path).stdout


@pytest.mark.parametrize("args, expected", [
    (["import", "nowhere.zip"], "no such file"),
    (["import", "text.zip"], "it is not a zip file, or it is damaged"),
    (["export", "bounce", "-o", "p.zip"], "'bounce' is a built-in template"),
    (["export", "-o", "p.zip"], "name the templates to export, or give --all"),
    (["export", "--all", "-o", "p.tar"], "name the pack .zip"),
    (["export", "--all", "-o", "p.zip", "--scope", "nowhere"], "unknown scope 'nowhere'"),
])
def test_a_mistake_is_one_clear_line(args, expected, tmp_path):
    (tmp_path / "text.zip").write_text("not a zip")
    result = run(["templates", *args], tmp_path / "data", tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and expected in line
    assert not (tmp_path / "p.zip").exists()


def test_a_pack_larger_than_the_setting_is_refused_unread(tmp_path):
    pack(tmp_path / "pack.zip", [("a/manifest.json", manifest("a")), ("a/template.mp4", io.BytesIO(
        os.urandom(300_000)).getvalue())])
    result = run(["templates", "import", "pack.zip"], tmp_path / "data", tmp_path, MEMESWAP_PACK_MAX_BYTES="100000")
    assert result.returncode == 2 and "more than the 98 KB a pack may be" in result.stderr, result.stderr
