"""Importing a template pack, all or nothing: the use case `memeswap templates import` runs.

The pack is checked and unpacked first (`inference.templates.packs.read_pack`: sizes,
entries, names, manifests), then every name is checked against the templates already
there, and only then is each template added the way a single add adds it (decoded,
screened, analysed, checked for protected faces; `PackTarget.add`). When any template is
refused, the ones of the pack added before it are removed again and the refusal names the
template; nothing of the pack stays. (A process killed in the middle of an import can leave
the pack's first templates added, each one whole: an add never leaves half a template.)
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Protocol

from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.core.templates import CustomTemplates
from memeswap.inference.errors import InputError
from memeswap.inference.templates.library import TemplateLibrary
from memeswap.inference.templates.manifest import validate_template_name
from memeswap.inference.templates.packs import PackedTemplate, PackLimits, read_pack

log = logging.getLogger("memeswap.packs")
LISTED_CLASHES = 5


class PackTarget(Protocol):
    """Where a pack's templates go, added and removed as single templates are there."""

    async def taken(self, names: list[str]) -> dict[str, str]:
        """Of `names`, the ones a template already has there, with what that template is."""
        ...

    async def add(self, template: PackedTemplate) -> None: ...

    async def remove(self, name: str) -> None: ...


async def import_pack(path: Path, limits: PackLimits, target: PackTarget) -> list[str]:
    """Add every template of the pack at `path` to `target`, or none; returns their names."""
    with tempfile.TemporaryDirectory(prefix="memeswap-pack-") as folder:
        packed = await asyncio.to_thread(read_pack, path, Path(folder), limits)
        names = [template.manifest.name for template in packed]
        clashes = await target.taken(names)
        if clashes:
            listed = ", ".join(f"{name} ({what})" for name, what in list(clashes.items())[:LISTED_CLASHES])
            more = f" and {len(clashes) - LISTED_CLASHES} more" if len(clashes) > LISTED_CLASHES else ""
            raise InputError(f"refused the pack: these names are taken: {listed}{more}; rename them in the pack "
                             "or remove those templates; nothing was added", code="name_taken")
        added: list[str] = []
        try:
            for template in packed:
                try:
                    await target.add(template)
                except InputError as error:
                    raise InputError(f"refused the pack: its template {template.manifest.name!r} was refused: "
                                     f"{error}; nothing was added", code=error.code) from None
                added.append(template.manifest.name)
        except BaseException:
            for name in reversed(added):
                try:
                    await target.remove(name)
                except Exception as error:  # the next start's reconcile removes what a row no longer backs
                    log.error("could not take back template %s of a refused pack: %s", name, error)
            raise
    return names


class ScopedPackTarget:
    """A guild's, chat's or person's own templates (`CustomTemplates`), for an operator."""

    def __init__(self, templates: CustomTemplates, requester: Requester, scope: Scope) -> None:
        self.templates = templates
        self.requester = requester
        self.scope = scope

    async def taken(self, names: list[str]) -> dict[str, str]:
        found = builtin_names(self.templates.library, names)
        for name in names:
            if name not in found:
                try:
                    await self.templates.check_can_add(self.requester, name, scope=self.scope)
                except InputError as error:
                    if error.code != "name_taken":
                        raise
                    found[name] = "already added here"
        return found

    async def add(self, template: PackedTemplate) -> None:
        manifest = template.manifest
        await self.templates.add(self.requester, template.media, manifest.name, self.scope, title=manifest.title,
                                 tags=manifest.tags, caption=manifest.caption)

    async def remove(self, name: str) -> None:
        await self.templates.remove(self.requester, name, self.scope)


def builtin_names(library: TemplateLibrary, names: list[str]) -> dict[str, str]:
    """Of `names`, the built-in templates' (taken everywhere)."""
    builtin = {t.name for t in library.templates() if t.builtin}
    return {name: "built-in" for name in names if name in builtin}


def global_pack_refs(library: TemplateLibrary, names: list[str], everything: bool) -> list[str]:
    """The templates for everyone to export: `names` (built-in ones refused: every place has
    them), or with `everything`, all the operator added."""
    if everything:
        return [t.name for t in library.templates() if not t.builtin]
    refs: list[str] = []
    for name in dict.fromkeys(names):
        found = library.get(validate_template_name(name))
        if found.builtin:
            raise _builtin(name)
        refs.append(found.name)
    return refs


async def scoped_pack_refs(templates: CustomTemplates, requester: Requester, scope: Scope, names: list[str],
                           everything: bool) -> list[str]:
    """The refs of a place's templates to export: `names` (each the one a request there
    resolves to; built-in ones refused), or with `everything`, all the place's own."""
    if everything:
        return [t.ref for t in await templates.visible(requester) if t.scope_key == scope.key]
    refs: list[str] = []
    for name in dict.fromkeys(names):
        info = await templates.resolve(requester, name)
        if info.builtin:
            raise _builtin(name)
        refs.append(info.ref)
    return refs


def _builtin(name: str) -> InputError:
    return InputError(f"{name!r} is a built-in template: every place has it already", code="builtin_template")
