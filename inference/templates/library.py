"""The template library: built-in templates plus the ones users add, compiled on demand."""

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from inference.errors import InputError, NoFaceError
from inference.faces.analyser import FaceAnalyser
from inference.media.decode import probe_media, read_frames
from inference.media.encode import StreamingEncoder
from inference.media.limits import MediaLimits
from inference.templates.compile import (
    Progress,
    TemplateTracks,
    TrackCache,
    analyse_frames,
    media_hash,
)
from inference.templates.manifest import TemplateManifest, validate_template_name

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


@dataclass
class CompiledTemplate:
    template: Template
    tracks: TemplateTracks

    @property
    def face_count(self) -> int:
        return len(self.tracks.tracks)


def builtin_templates_dir() -> Path:
    from importlib.resources import files

    return Path(str(files("templates") / "builtin"))


class TemplateLibrary:
    def __init__(self, custom_dir: Path, cache: TrackCache, analyser: FaceAnalyser,
                 limits: MediaLimits = MediaLimits(), builtin_dir: Path | None = None) -> None:
        self.custom_dir = custom_dir
        self.builtin_dir = builtin_dir or builtin_templates_dir()
        self.cache = cache
        self.analyser = analyser
        self.limits = limits

    def templates(self) -> list[Template]:
        found = {t.name: t for t in self._scan(self.custom_dir, builtin=False)}
        found.update({t.name: t for t in self._scan(self.builtin_dir, builtin=True)})
        return sorted(found.values(), key=lambda t: (not t.builtin, t.name))

    def get(self, name: str) -> Template:
        validate_template_name(name)
        for folder, builtin in ((self.builtin_dir, True), (self.custom_dir, False)):
            manifest = folder / name / MANIFEST
            if manifest.is_file():
                return _load(manifest.parent, builtin)
        raise InputError(f"no template named {name!r}; `memeswap templates list` shows them", code="unknown_template")

    def compile(self, template: Template, progress: Progress | None = None) -> CompiledTemplate:
        digest = media_hash(template.media_path)
        tracks = self.cache.load(digest, self.analyser.version)
        if tracks is None:
            frames = read_frames(template.media_path, self.limits, max_side=self.limits.max_template_side)
            tracks = analyse_frames(frames, self.analyser, progress)
            self.cache.store(digest, self.analyser.version, tracks)
        if not tracks.tracks:
            raise NoFaceError(f"no face found in the template {template.manifest.title!r}; "
                              "pick a GIF or video where a face is clearly visible")
        return CompiledTemplate(template, tracks)

    def ad_hoc(self, path: Path, progress: Progress | None = None) -> CompiledTemplate:
        """A media file used as a template once, without adding it to the library."""
        info = probe_media(path, self.limits)
        manifest = TemplateManifest(name="ad-hoc", title=path.stem, fps=info.fps, media=path.name)
        return self.compile(Template(manifest, path.parent, builtin=False), progress)

    def add(self, path: Path, name: str, title: str | None = None, tags: list[str] | None = None,
            caption: str | None = None, progress: Progress | None = None) -> CompiledTemplate:
        """Validate, downscale, analyse and store a new template; all or nothing."""
        validate_template_name(name)
        if any(t.name == name for t in self.templates()):
            raise InputError(f"a template named {name!r} already exists", code="name_taken")
        info = probe_media(path, self.limits)
        self.custom_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".adding-{name}-", dir=self.custom_dir))
        try:
            manifest = TemplateManifest(name=name, title=title or name.replace("-", " ").title(),
                                        tags=tags or [], fps=info.fps, caption=caption,
                                        source=f"added from {path.name}")
            with StreamingEncoder("mp4", fps=info.fps) as encoder:
                def stored(frames):
                    for frame in frames:
                        encoder.write(frame)
                        yield frame

                frames = read_frames(path, self.limits, max_side=self.limits.max_template_side)
                tracks = analyse_frames(stored(frames), self.analyser, progress, info.frame_count)
                if not tracks.tracks:
                    raise NoFaceError("no face found in that template; pick a GIF or video where a face is clearly visible")
                encoded = encoder.finish()
            (staging / manifest.media).write_bytes(encoded.data)
            (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2))
            self.cache.store(media_hash(staging / manifest.media), self.analyser.version, tracks)
            staging.rename(self.custom_dir / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return CompiledTemplate(_load(self.custom_dir / name, builtin=False), tracks)

    def remove(self, name: str) -> None:
        template = self.get(name)
        if template.builtin:
            raise InputError(f"{name!r} is a built-in template and cannot be removed", code="builtin_template")
        trash = template.folder.with_name(f".removing-{name}")
        template.folder.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)

    @staticmethod
    def _scan(folder: Path, builtin: bool) -> list[Template]:
        if not folder.is_dir():
            return []
        return [_load(p.parent, builtin) for p in sorted(folder.glob(f"*/{MANIFEST}"))
                if not p.parent.name.startswith(".")]


def _load(folder: Path, builtin: bool) -> Template:
    return Template(TemplateManifest.model_validate(json.loads((folder / MANIFEST).read_text())), folder, builtin)
