"""The templates on disk: what a folder holds (`Template`), read from its manifest alone.

Listing templates needs nothing else: no model, no decoder. (`library.TemplateLibrary`
adds, compiles and removes them.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from memeswap.inference.templates.manifest import TemplateManifest

MANIFEST = "manifest.json"



@dataclass
class Template:
    manifest: TemplateManifest
    folder: Path
    builtin: bool

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def media_path(self) -> Path:
        return self.folder / self.manifest.media

    @property
    def overlay_path(self) -> Path | None:
        return self.folder / self.manifest.overlay if self.manifest.overlay else None


def builtin_templates_dir() -> Path:
    from importlib.resources import files

    return Path(str(files("memeswap.templates") / "builtin"))


def load_template(folder: Path, builtin: bool) -> Template:
    return Template(TemplateManifest.model_validate(json.loads((folder / MANIFEST).read_text())), folder, builtin)


def scan_templates(folder: Path, builtin: bool) -> list[Template]:
    """Every template in `folder`, by name (folders being added start with a dot)."""
    if not folder.is_dir():
        return []
    return [load_template(p.parent, builtin) for p in sorted(folder.glob(f"*/{MANIFEST}"))
            if not p.parent.name.startswith(".")]


def list_templates(custom_dir: Path, builtin_dir: Path | None = None) -> list[Template]:
    """Built-in and global templates, built-in first; a built-in name hides an added one."""
    found = {t.name: t for t in scan_templates(custom_dir, builtin=False)}
    found.update({t.name: t for t in scan_templates(builtin_dir or builtin_templates_dir(), builtin=True)})
    return sorted(found.values(), key=lambda t: (not t.builtin, t.name))
