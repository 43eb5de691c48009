"""The template library: built-in templates plus the ones users add, compiled on demand."""

import difflib
import errno
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memeswap.inference.errors import InputError, NoFaceError
from memeswap.inference.faces.analyser import FaceAnalyser
from memeswap.inference.faces.human_check import HumanFaceCheck
from memeswap.inference.media.decode import probe_media, read_frames
from memeswap.inference.media.encode import StreamingEncoder
from memeswap.inference.media.limits import Deadline, MediaLimits
from memeswap.inference.media.sampling import SCREENED_FRAMES, SpreadSample
from memeswap.inference.media.sound import template_sound
from memeswap.inference.templates.catalog import (
    MANIFEST,
    Template,
    builtin_templates_dir,
    list_templates,
    load_template,
    scan_templates,
)
from memeswap.inference.templates.compile import (
    Progress,
    TemplateTracks,
    TrackCache,
    analyse_frames,
    describe_faces,
    media_hash,
)
from memeswap.inference.templates.face_frames import FaceFrameAnalysis
from memeswap.inference.templates.manifest import (
    TemplateManifest,
    validate_new_template_name,
    validate_template_name,
)
from memeswap.inference.templates.scope_keys import SCOPE_KEY

log = logging.getLogger("memeswap.library")

ADDED_MEDIA = "template.mp4"  # the name `add` stores media under
FrameCheck = Callable[[list[np.ndarray]], None]


@dataclass
class CompiledTemplate:
    template: Template
    tracks: TemplateTracks

    @property
    def face_count(self) -> int:
        return len(self.tracks.tracks)




def split_template_ref(ref: str) -> tuple[str | None, str]:
    """"name" (built-in or global) or "scope-key/name" (a guild's, chat's or user's own)."""
    scope_key, _, name = ref.rpartition("/")
    if scope_key and not SCOPE_KEY.fullmatch(scope_key):
        raise InputError(f"no template named {ref!r}", code="unknown_template")
    return scope_key or None, validate_template_name(name)


def closest_templates(asked: str, templates: list[Template], most: int = 3) -> str:
    """"; did you mean `shake` (Triggered)?" for a name close to a template's name or title,
    else "". Built-in and global templates only: nobody learns of another place's."""
    by_key: dict[str, Template] = {}
    for template in templates:
        by_key.setdefault(template.name.lower(), template)
        by_key.setdefault(template.manifest.title.lower(), template)
    picked: list[Template] = []
    starting = [key for key in by_key if len(asked) >= 3 and key.startswith(asked.lower())]
    for key in starting + difflib.get_close_matches(asked.lower(), list(by_key), n=most * 2, cutoff=0.6):
        if by_key[key] not in picked:
            picked.append(by_key[key])
    if not picked:
        return ""
    return "; did you mean " + " or ".join(f"`{t.name}` ({t.manifest.title})" for t in picked[:most]) + "?"


class TemplateLibrary:
    """Built-in templates, the operator's global ones (`custom_dir/<name>`) and the scoped
    ones of guilds, chats and users (`custom_dir/scoped/<scope key>/<name>`). Which scoped
    templates exist is the store's business (`bot.core.templates`); this class keeps their
    media and tracks."""

    def __init__(self, custom_dir: Path, cache: TrackCache, analyser: FaceAnalyser,
                 limits: MediaLimits = MediaLimits(), builtin_dir: Path | None = None,
                 human_check: HumanFaceCheck | None = None, face_frames: FaceFrameAnalysis | None = None) -> None:
        """`human_check`: the one to share with the rest of the process; a library always
        has one, since an animal's face must never become a template face. `face_frames`:
        what looks at each face again once its tracks are known (its hand model loads on
        first use)."""
        self.custom_dir = custom_dir
        self.builtin_dir = builtin_dir or builtin_templates_dir()
        self.cache = cache
        self.analyser = analyser
        self.limits = limits
        self.human_check = human_check or HumanFaceCheck()
        self.face_frames = face_frames or FaceFrameAnalysis()
        # Storing a template's tracks and deciding that a removed one's are no longer used
        # by another template with the same media must not interleave.
        self._cache_entries = threading.Lock()

    def templates(self) -> list[Template]:
        """Built-in and global templates."""
        return list_templates(self.custom_dir, self.builtin_dir)

    def scope_folder(self, scope_key: str | None) -> Path:
        if scope_key is None or scope_key == "global":
            return self.custom_dir
        if not SCOPE_KEY.fullmatch(scope_key):
            raise ValueError(f"bad scope key {scope_key!r}")
        return self.custom_dir / "scoped" / scope_key

    def get(self, ref: str) -> Template:
        """A template by name (built-in or global) or by "scope-key/name"."""
        scope_key, name = split_template_ref(ref)
        places = [(self.scope_folder(scope_key), False)] if scope_key else [(self.builtin_dir, True),
                                                                             (self.custom_dir, False)]
        for folder, builtin in places:
            manifest = folder / name / MANIFEST
            if manifest.is_file():
                return load_template(manifest.parent, builtin)
        guess = "" if scope_key else closest_templates(name, self.templates())
        raise InputError(f"no template named {name!r}{guess}", code="unknown_template")

    def compile(self, template: Template, progress: Progress | None = None,
                deadline: Deadline | None = None) -> CompiledTemplate:
        """The template's face tracks: from the cache, else from analysing every frame (then
        cached). `deadline` stops that analysis between frames (nothing is cached then)."""
        digest = media_hash(template.media_path)
        tracks = self.cache.load(digest, self.analyser.version)
        if tracks is None:
            frames = read_frames(template.media_path, self.limits, max_side=self.limits.max_template_side,
                                 deadline=deadline)
            tracks = analyse_frames(frames, self.analyser, progress, human_check=self.human_check)
            tracks = self._describe(tracks, template.media_path, deadline)
            self.cache.store(digest, self.analyser.version, tracks)
        if not tracks.tracks:
            raise NoFaceError(f"no human face found in the template {template.manifest.title!r}; "
                              "pick a GIF or video where a person's face is clearly visible")
        return CompiledTemplate(template, tracks)

    def ad_hoc(self, path: Path, progress: Progress | None = None, check_frames: FrameCheck | None = None,
               deadline: Deadline | None = None) -> CompiledTemplate:
        """A media file used as a template once, without adding it to the library: decoded and
        analysed in one pass, screened by `check_frames` (as `add` does), and its tracks are
        not cached (nothing of it stays behind)."""
        info = probe_media(path, self.limits)
        sample: SpreadSample[np.ndarray] = SpreadSample(SCREENED_FRAMES)
        frames = read_frames(path, self.limits, max_side=self.limits.max_template_side, deadline=deadline)
        tracks = analyse_frames(sample.passing(frames), self.analyser, progress, info.frame_count, self.human_check)
        if check_frames is not None:
            check_frames(sample.picked())
        manifest = TemplateManifest(name="ad-hoc", title=path.stem, fps=info.fps, media=path.name)
        if not tracks.tracks:
            raise NoFaceError(f"no human face found in the template {manifest.title!r}; "
                              "pick a GIF or video where a person's face is clearly visible")
        tracks = self._describe(tracks, path, deadline)
        return CompiledTemplate(Template(manifest, path.parent, builtin=False), tracks)

    def add(self, path: Path, name: str, title: str | None = None, tags: list[str] | None = None,
            caption: str | None = None, progress: Progress | None = None, scope_key: str | None = None,
            check_frames: FrameCheck | None = None, one_off: bool = False,
            deadline: Deadline | None = None) -> CompiledTemplate:
        """Validate, downscale, analyse and store a new template; all or nothing.

        One decoding pass stores (re-encodes), analyses and keeps a few frames spread over
        the frames actually decoded; `check_frames` (content screening) sees those before
        anything is stored, and refuses by raising. `deadline` stops the work between frames
        (nothing is stored then). `one_off`: stored for one job, under a reserved `one-off-`
        name that no other template may have."""
        validate_new_template_name(name, one_off)
        deadline = deadline or Deadline()
        folder = self.scope_folder(scope_key)
        builtin_names = {t.name for t in scan_templates(self.builtin_dir, builtin=True)}
        if name in builtin_names or (folder / name / MANIFEST).is_file():
            raise _name_taken(name)
        info = probe_media(path, self.limits)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".adding-{name}-", dir=folder))
        try:
            manifest = TemplateManifest(name=name, title=title or name.replace("-", " ").title(),
                                        tags=tags or [], fps=info.fps, caption=caption, media=ADDED_MEDIA,
                                        source=f"added from {path.name}")
            sample: SpreadSample[np.ndarray] = SpreadSample(SCREENED_FRAMES)
            # the stored MP4 keeps the sound of a video with sound (no longer than its frames)
            with StreamingEncoder("mp4", fps=info.fps, sound=template_sound(path, self.limits.max_seconds)) as encoder:
                def stored(frames):
                    for frame in frames:
                        encoder.write(frame)
                        yield frame

                frames = read_frames(path, self.limits, max_side=self.limits.max_template_side, deadline=deadline)
                tracks = analyse_frames(sample.passing(stored(frames)), self.analyser, progress, info.frame_count,
                                        self.human_check)
                if check_frames is not None:
                    check_frames(sample.picked())
                if not tracks.tracks:
                    raise NoFaceError("no human face found in that template; pick a GIF or video where a person's "
                                      "face is clearly visible")
                encoded = encoder.finish()
            (staging / manifest.media).write_bytes(encoded.data)
            tracks = self._describe(tracks, staging / manifest.media, deadline)  # the frames as stored
            (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2))
            deadline.commit()
            try:
                staging.rename(folder / name)
            except OSError as error:
                if error.errno in (errno.ENOTEMPTY, errno.EEXIST):  # added meanwhile, by another add
                    raise _name_taken(name) from None
                raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            with self._cache_entries:
                self.cache.store(media_hash(folder / name / manifest.media), self.analyser.version, tracks)
        except OSError as error:  # the template is stored; its tracks are recomputed when it is first used
            log.warning("could not cache the tracks of template %s: %s", name, error)
        return CompiledTemplate(load_template(folder / name, builtin=False), tracks)

    def _describe(self, tracks: TemplateTracks, media: Path, deadline: Deadline | None) -> TemplateTracks:
        """The second pass of a compile: each track's face in every frame, read again from
        `media` as a swap will decode it."""
        if not tracks.tracks:
            return tracks
        frames = read_frames(media, self.limits, max_side=self.limits.max_template_side, deadline=deadline)
        return describe_faces(tracks, frames, self.face_frames)

    def scoped_names(self, scope_key: str) -> list[str]:
        """The template folders stored for one scope (for reconciling with the store)."""
        return [t.name for t in scan_templates(self.scope_folder(scope_key), builtin=False)]

    def scope_keys(self) -> list[str]:
        scoped = self.custom_dir / "scoped"
        return sorted(p.name for p in scoped.iterdir() if p.is_dir()) if scoped.is_dir() else []

    def remove(self, ref: str) -> None:
        """Remove an added template's folder and its cached tracks (unless another template
        has the very same media)."""
        template = self.get(ref)
        name = template.name
        if template.builtin:
            raise InputError(f"{name!r} is a built-in template and cannot be removed", code="builtin_template")
        media = template.media_path
        digest, size = (media_hash(media), media.stat().st_size) if media.is_file() else (None, 0)
        trash = template.folder.with_name(f".removing-{name}")
        template.folder.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
        if digest is not None:
            with self._cache_entries:
                if not self._media_kept_elsewhere(digest, size):
                    self.cache.remove(digest)

    def _media_kept_elsewhere(self, digest: str, size: int) -> bool:
        """Whether a template still stored (built-in, added, or being added) has media with
        this hash. An added template's media is always `ADDED_MEDIA` (what `add` stores), so
        each costs one stat; only media of the same size is hashed."""
        if any(_same_media(t.media_path, digest, size) for t in scan_templates(self.builtin_dir, builtin=True)):
            return True
        places = [self.custom_dir]
        scoped = self.custom_dir / "scoped"
        if scoped.is_dir():
            places += [p for p in scoped.iterdir() if p.is_dir()]
        for place in places:
            try:
                entries = os.scandir(place)
            except FileNotFoundError:
                continue
            with entries:
                for entry in entries:
                    if entry.name.startswith(".removing-") or not entry.is_dir(follow_symlinks=False):
                        continue
                    if _same_media(os.path.join(entry.path, ADDED_MEDIA), digest, size):
                        return True
        return False


def _same_media(path: Path | str, digest: str, size: int) -> bool:
    try:
        return os.stat(path).st_size == size and media_hash(Path(path)) == digest
    except FileNotFoundError:  # removed meanwhile, or a folder being added that has no media yet
        return False


def _name_taken(name: str) -> InputError:
    return InputError(f"a template named {name!r} already exists", code="name_taken")
