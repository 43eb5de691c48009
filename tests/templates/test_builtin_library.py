"""The built-in library as a user browses it: at least 20 templates, six different people
in them (as dlib's face descriptors judge), several with more than one face, and every
one naming its sources and licence, in its manifest, in `templates show` and in NOTICE."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dlib
import pytest

from memeswap.inference.media.decode import read_frames
from memeswap.inference.safety.protected_faces import SAME_PERSON_DISTANCE, DlibFaceDescriptor
from memeswap.inference.templates.catalog import builtin_templates_dir

ROOT = Path(__file__).resolve().parents[2]
SAMPLED = 3  # frames looked at per template (first, middle, last): faces stay put in a built-in


def memeswap(args: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEMESWAP_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "memeswap", *args], cwd=data_dir, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def builtins(tmp_path_factory) -> list[dict]:
    listed = memeswap(["templates", "list", "--json"], tmp_path_factory.mktemp("list"))
    assert listed.returncode == 0, listed.stderr
    return [t for t in json.loads(listed.stdout) if t["builtin"]]


@pytest.fixture(scope="module")
def faces_seen(builtins, analyser) -> dict[str, list[list]]:
    """Per built-in: for each sampled frame, the dlib descriptors of the faces our analyser finds."""
    describer = DlibFaceDescriptor()
    seen = {}
    for template in builtins:
        frames = list(read_frames(builtin_templates_dir() / template["name"] / template["media"]))
        picked = [frames[i] for i in sorted({0, len(frames) // 2, len(frames) - 1})][:SAMPLED]
        seen[template["name"]] = [[describer.describe(f, face) for face in analyser.analyse(f)] for f in picked]
    return seen


def test_at_least_twenty_built_ins_each_name_their_sources_and_licence(builtins):
    assert len(builtins) >= 20, [t["name"] for t in builtins]
    for template in builtins:
        assert template["source"] and template["licence"], template["name"]
        assert "public domain" in template["licence"], template
        assert any(origin in template["source"] for origin in ("scikit-image", "matplotlib", "openclipart-png"))


def test_notice_lists_every_built_in_with_its_sources_and_licence(builtins):
    notice = (ROOT / "NOTICE").read_text()
    for template in builtins:
        entry = notice.split(f"\n{template['name']} ({template['title']})\n", 1)
        assert len(entry) == 2, f"NOTICE has no entry for {template['name']}"
        block = entry[1].split("\n\n", 1)[0]
        for source in template["source"].split("; ")[:-1]:  # the last one says what composed it
            assert f"source:  {source}" in block, (template["name"], source)
        assert f"licence: {template['licence']}" in block


def test_show_prints_the_source_and_licence(tmp_path):
    shown = memeswap(["templates", "show", "no-yes"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    details = json.loads(shown.stdout)
    assert "Openclipart" in details["source"] and details["licence"].startswith("public domain")
    assert len(details["faces"]) == 2  # our analyser tracks both panels' faces
    # numbered in reading order: the top panel's face is face 1
    top, bottom = details["faces"]
    assert [top["face"], bottom["face"]] == [1, 2] and top["box"][3] <= bottom["box"][1]


def test_every_built_in_shows_a_face_in_every_sampled_frame(faces_seen):
    empty = {name: [len(f) for f in frames] for name, frames in faces_seen.items() if not all(frames)}
    assert not empty


def test_at_least_four_built_ins_show_several_faces(faces_seen):
    several = sorted(name for name, frames in faces_seen.items() if min(len(f) for f in frames) >= 2)
    assert len(several) >= 4, several


def test_six_different_people_across_the_library(faces_seen):
    """dlib's own clustering (Chinese whispers) of every face seen, at dlib's same-person
    distance: at least six clusters, each a person of its own."""
    owners = [name for name, frames in faces_seen.items() for faces in frames for _ in faces]
    vectors = [dlib.vector([float(v) for v in d]) for frames in faces_seen.values() for faces in frames for d in faces]
    labels = dlib.chinese_whispers_clustering(vectors, SAME_PERSON_DISTANCE)
    people: dict[int, set[str]] = {}
    for owner, label in zip(owners, labels):
        people.setdefault(label, set()).add(owner)
    assert len(people) >= 6, sorted(sorted(names) for names in people.values())
