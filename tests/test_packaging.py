"""The wheel installs one import name, memeswap.*, and nothing else at the top level."""

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("bot", "inference", "templates")


def test_every_package_folder_is_listed_under_memeswap():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"memeswap"}
    for folder in FOLDERS:
        for path, dirs, files in os.walk(ROOT / folder):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if any(name.endswith(".py") for name in files):
                assert "__init__.py" in files, f"{path} holds modules but no __init__.py"
                found.add("memeswap." + ".".join(Path(path).relative_to(ROOT).parts))
    assert listed == found


def image_context() -> list[str]:
    """The top-level names .dockerignore lets into an image's build context: it excludes
    everything (`*`), then admits names one by one (`!name`)."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "the build context is an allow-list"
    return [rule[1:] for rule in rules if rule.startswith("!")]


def test_no_secret_or_local_state_goes_into_an_image():
    admitted = image_context()
    for name in (".env", ".venv", ".git", "tests", "deploy", "mypy_layout", "build"):
        assert name not in admitted, name
    assert all((ROOT / entry).exists() for entry in admitted)
    # of deploy/, only the lock files the image installs from (names, versions and hashes)
    assert [entry for entry in admitted if "/" in entry] == ["deploy/requirements"]
    assert {path.suffix for path in (ROOT / "deploy/requirements").iterdir()} <= {".lock", ".sh"}


def test_the_wheel_holds_only_memeswap(tmp_path):
    # built from a copy of exactly the image's build context (building writes build/ and
    # *.egg-info next to the sources), so the image can install what it is given
    source = tmp_path / "source"
    source.mkdir()
    for name in image_context():
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", ".env"))
        else:
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("memeswap-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"memeswap"}
    assert "memeswap/templates/builtin/deal-with-it/template.mp4" in names or any(
        n.startswith("memeswap/templates/builtin/deal-with-it/") for n in names)
    assert "memeswap/bot/store/migrations/script.py.mako" in names
    # the built-in templates' sources and licences travel with them
    assert any(n.endswith(".dist-info/licenses/NOTICE") for n in names), [n for n in names if "dist-info" in n]
    assert not any("make_templates" in name for name in names)
