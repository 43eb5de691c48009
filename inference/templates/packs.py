"""Template packs: a zip of templates, one folder each, `NAME/manifest.json` beside the media
the manifest names (`NAME/template.mp4`).

Reading a pack trusts nothing in it. Before a byte is unpacked: the file's size, the number
of entries, each entry's name (no absolute paths, no `..`, no backslashes, no symlinks or
other special files, no name twice, nothing but `NAME/manifest.json` and `NAME/MEDIA`), and
the sizes the entries declare, one by one and in all. While unpacking, each entry is read
in chunks and stops at the size it declared (a zip that lies about it fails its checksum),
so a zip bomb is refused before it is inflated. Only what passes is written, under names
made here (never a name from the zip), into a folder the caller owns.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from memeswap.inference.errors import InputError
from memeswap.inference.sizes import human_bytes
from memeswap.inference.templates.catalog import MANIFEST, Template
from memeswap.inference.templates.manifest import SHOWN_CHARS, TemplateManifest, validate_new_template_name

MAX_MANIFEST_BYTES = 64 * 1024
MAX_TITLE_CHARS, MAX_TAGS, MAX_TAG_CHARS, MAX_CAPTION_CHARS = 64, 16, 32, 200
_CHUNK = 1 << 20
_SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")
_END_OF_DIRECTORY = b"PK\x05\x06"
_END_RECORD_BYTES = 22 + 65535  # the record and the longest comment it may carry


@dataclass(frozen=True)
class PackLimits:
    max_bytes: int = 200 * 1024 * 1024  # the zip file itself
    max_unpacked_bytes: int = 500 * 1024 * 1024  # every entry, as declared and as read
    max_entries: int = 200
    max_entry_bytes: int = 50 * 1024 * 1024


@dataclass(frozen=True)
class PackedTemplate:
    manifest: TemplateManifest
    media: Path  # unpacked, under the caller's folder


def _shown(text: str) -> str:
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…")


def _refused(why: str) -> InputError:
    return InputError(f"refused the pack: {why}; nothing was added", code="bad_pack")


def read_pack(path: Path, into: Path, limits: PackLimits = PackLimits()) -> list[PackedTemplate]:
    """The templates of the pack at `path`, checked and unpacked into the folder `into`, in
    the order of their folder names."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise _refused(f"it is {human_bytes(size)}, more than the {human_bytes(limits.max_bytes)} a pack may be")
    declared = _declared_entries(path, size)
    if declared is not None and declared > limits.max_entries:  # before zipfile reads every entry's record
        raise _refused(f"it has {declared} entries, more than the {limits.max_entries} a pack may have")
    try:
        with zipfile.ZipFile(path) as archive:
            members = _checked_members(archive.infolist(), limits)
            return [_unpack(archive, name, files, into, limits) for name, files in sorted(members.items())]
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):  # a checksum, a stream, a method
        raise _refused("it is not a zip file, or it is damaged") from None


def _declared_entries(path: Path, size: int) -> int | None:
    """How many entries the zip's end record announces (65535: that many or more, the
    zip64 way), or None where there is no end record (zipfile then refuses the file)."""
    with path.open("rb") as handle:
        handle.seek(max(0, size - _END_RECORD_BYTES))
        tail = handle.read()
    at = tail.rfind(_END_OF_DIRECTORY)
    if at < 0 or len(tail) < at + 12:
        return None
    return int.from_bytes(tail[at + 10:at + 12], "little")


def _checked_members(infos: list[zipfile.ZipInfo], limits: PackLimits) -> dict[str, dict[str, zipfile.ZipInfo]]:
    """Template folder name -> file name -> entry, once every entry passed."""
    if len(infos) > limits.max_entries:
        raise _refused(f"it has {len(infos)} entries, more than the {limits.max_entries} a pack may have")
    if not infos:
        raise _refused("it is empty")
    seen: set[str] = set()
    total = 0
    members: dict[str, dict[str, zipfile.ZipInfo]] = {}
    for info in infos:
        name = info.filename
        parts = _safe_parts(name)
        key = name.rstrip("/").casefold()
        if key in seen:
            raise _refused(f"the entry {_shown(name)} is in it twice")
        seen.add(key)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise _refused(f"the entry {_shown(name)} is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _refused(f"the entry {_shown(name)} is not a plain file")
        if info.flag_bits & 0x1:
            raise _refused(f"the entry {_shown(name)} is encrypted")
        if info.is_dir():
            if len(parts) != 1:
                raise _refused(f"the folder {_shown(name)} is not a template folder (NAME/)")
            members.setdefault(parts[0], {})
            continue
        if len(parts) != 2:
            raise _refused(f"the entry {_shown(name)} is not NAME/manifest.json or NAME/MEDIA")
        if info.file_size > limits.max_entry_bytes:
            raise _refused(f"the entry {_shown(name)} unpacks to {human_bytes(info.file_size)}, more than the "
                           f"{human_bytes(limits.max_entry_bytes)} an entry may")
        total += info.file_size
        if total > limits.max_unpacked_bytes:
            raise _refused(f"it unpacks to more than the {human_bytes(limits.max_unpacked_bytes)} a pack may")
        members.setdefault(parts[0], {})[parts[1]] = info
    return members


def _safe_parts(name: str) -> list[str]:
    """The parts of an entry's name, refused when it is absolute, climbs out with `..`, or
    holds a backslash, a drive or a control character."""
    if (not name or name.startswith("/") or "\\" in name or ":" in name
            or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        raise _refused(f"the entry name {_shown(name)} is not a relative path")
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise _refused(f"the entry name {_shown(name)} is not a plain relative path")
    return parts


def _unpack(archive: zipfile.ZipFile, folder: str, files: dict[str, zipfile.ZipInfo], into: Path,
            limits: PackLimits) -> PackedTemplate:
    try:
        validate_new_template_name(folder)
    except InputError as error:
        raise _refused(f"the folder {_shown(folder)}: {error}") from None
    if MANIFEST not in files:
        raise _refused(f"the folder {_shown(folder)} has no {MANIFEST}")
    if files[MANIFEST].file_size > MAX_MANIFEST_BYTES:
        raise _refused(f"the manifest of {_shown(folder)} is larger than {human_bytes(MAX_MANIFEST_BYTES)}")
    manifest = _manifest(folder, _read(archive, files[MANIFEST], MAX_MANIFEST_BYTES))
    extra = sorted(set(files) - {MANIFEST, manifest.media})
    if manifest.media not in files or extra:
        what = f"has {_shown(extra[0])}, which its manifest does not name" if extra else \
            f"lacks the media its manifest names, {_shown(manifest.media)}"
        raise _refused(f"the folder {_shown(folder)} {what}")
    suffix = PurePosixPath(manifest.media).suffix.lower()
    media = into / f"{folder}{suffix if _SUFFIX.fullmatch(suffix) else ''}"  # a name made here
    with media.open("xb") as handle:
        _read(archive, files[manifest.media], limits.max_entry_bytes, handle)
    return PackedTemplate(manifest, media)


def _manifest(folder: str, data: bytes) -> TemplateManifest:
    try:
        manifest = TemplateManifest.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the manifest"
        raise _refused(f"the manifest of {_shown(folder)} is not valid ({where}: {first['msg'][:80]})") from None
    if manifest.name != folder:
        raise _refused(f"the manifest in the folder {_shown(folder)} names {_shown(manifest.name)}")
    if "/" in manifest.media or manifest.media in ("", ".", "..", MANIFEST):
        raise _refused(f"the manifest of {_shown(folder)} names the media {_shown(manifest.media)}")
    too_long = (len(manifest.title) > MAX_TITLE_CHARS or len(manifest.tags) > MAX_TAGS
                or any(len(tag) > MAX_TAG_CHARS for tag in manifest.tags)
                or len(manifest.caption or "") > MAX_CAPTION_CHARS)
    if too_long:
        raise _refused(f"the manifest of {_shown(folder)} has a title over {MAX_TITLE_CHARS} characters, over "
                       f"{MAX_TAGS} tags, a tag over {MAX_TAG_CHARS} or a caption over {MAX_CAPTION_CHARS}")
    return manifest


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, most: int, handle=None) -> bytes:
    """The entry's bytes (or, with `handle`, written there), read in chunks and stopped past
    `most` or past the size the entry declared."""
    read, chunks = 0, []
    with archive.open(info) as entry:
        while chunk := entry.read(_CHUNK):
            read += len(chunk)
            if read > min(most, info.file_size):
                raise _refused(f"the entry {_shown(info.filename)} unpacks to more than it declares")
            if handle is None:
                chunks.append(chunk)
            else:
                handle.write(chunk)
    return b"".join(chunks)


def write_pack(templates: list[Template], output: Path) -> None:
    """A pack of `templates` (manifest and media each) at `output`: media stored as it is
    (already compressed), manifests deflated."""
    with zipfile.ZipFile(output, "w") as archive:
        for template in templates:
            manifest = template.manifest.model_copy(update={"overlay": None})
            archive.writestr(f"{template.name}/{MANIFEST}", manifest.model_dump_json(indent=2),
                             compress_type=zipfile.ZIP_DEFLATED)
            archive.write(template.media_path, f"{template.name}/{manifest.media}", compress_type=zipfile.ZIP_STORED)
