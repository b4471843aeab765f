"""Skill exposure (`type: skill`): a read-only catalogue of skills over HTTP (SEMANTICS §7.2).

* `GET /skills` → `{"count": n, "skills": [{name, description, license?, tools: [names]}]}`
* `GET /skills/{name}` → the skill's metadata and its tools: `type: derived` with an
  `invocationRef {targetNamespace, action, mode: rest|mcp}` for `from` tools, `type:
  instruction` with the `instruction` for the others; unknown skill → 404.
* `GET /skills/{name}/contents` (files under the skill's `location`), `GET
  /skills/{name}/contents/{file…}` (one file), `GET /skills/{name}/download` (a zip of the
  folder); 404 when the skill has no `location` or the file does not exist. A requested file
  must stay inside the folder.

Skills execute nothing: they point at REST operations and MCP tools of the same capability.
Load-time checks (`check_skills`): each tool has exactly one of `from`/`instruction`;
`from.sourceNamespace` is the namespace of another REST or MCP exposure of the capability;
an `instruction` tool needs the skill to have a `location`.
"""

from __future__ import annotations

import io
import mimetypes
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..auth import every, guard
from ..engine.capability import Capability, Exposure
from ..http import Request, Response, json_response
from .problems import problem

SKILL_FIELDS = (
    "license",
    "compatibility",
    "argument-hint",
    "allowed-tools",
    "user-invocable",
    "disable-model-invocation",
    "metadata",
)
DEFAULTS = {"user-invocable": True, "disable-model-invocation": False}


class SkillError(ValueError):
    pass


def _skills(exposure: Exposure) -> list[Mapping[str, Any]]:
    return [s for s in exposure.spec.get("skills") or [] if isinstance(s, Mapping)]


def check_skills(capability: Capability, exposure: Exposure) -> list[str]:
    """Load-time problems of one skill exposure (empty when all is well)."""
    sources = {e.namespace: e.kind for e in capability.exposures if e.kind in ("rest", "mcp") and e is not exposure}
    problems = []
    for skill in _skills(exposure):
        name = skill.get("name")
        for tool in skill.get("tools") or []:
            if not isinstance(tool, Mapping):
                continue
            where = f"skill {name!r} tool {tool.get('name')!r}"
            has_from, has_instruction = isinstance(tool.get("from"), Mapping), tool.get("instruction") is not None
            if has_from == has_instruction:
                problems.append(f"{where}: needs exactly one of 'from' and 'instruction'")
            elif has_from:
                source = str(tool["from"].get("sourceNamespace", ""))
                if source not in sources:
                    known = ", ".join(sorted(sources)) or "none"
                    problems.append(
                        f"{where}: sourceNamespace {source!r} is not a REST or MCP exposure of this capability (exposed: {known})"
                    )
            elif not skill.get("location"):
                problems.append(f"{where}: an 'instruction' tool needs the skill to have a 'location'")
    return problems


def _folder(location: Any) -> Path | None:
    if not isinstance(location, str) or not location.startswith("file:"):
        return None
    return Path(unquote(urlparse(location).path))


class SkillCatalog:
    """The skills of the skill exposures sharing one port."""

    def __init__(self, entries: Sequence[tuple[Capability, Exposure]]):
        self.skills: dict[str, tuple[Capability, Exposure, Mapping[str, Any]]] = {}
        for capability, exposure in entries:
            problems = check_skills(capability, exposure)
            if problems:
                raise SkillError(f"{capability.file}: " + "; ".join(problems))
            for skill in _skills(exposure):
                name = str(skill.get("name"))
                if name in self.skills:
                    raise SkillError(
                        f"skill {name!r} is declared by both {self.skills[name][0].file} and {capability.file}"
                    )
                self.skills[name] = (capability, exposure, skill)
        self.handle = guard(every([e.auth for _, e in entries]), self.answer)  # naftiko/auth/guard.py

    # -- documents ---------------------------------------------------------------------------

    def catalog(self) -> dict[str, Any]:
        skills = []
        for _, _, skill in self.skills.values():
            entry: dict[str, Any] = {"name": skill.get("name"), "description": skill.get("description")}
            if skill.get("license") is not None:
                entry["license"] = skill["license"]
            entry["tools"] = [t.get("name") for t in skill.get("tools") or [] if isinstance(t, Mapping)]
            skills.append(entry)
        return {"count": len(skills), "skills": skills}

    def detail(self, name: str) -> dict[str, Any] | None:
        found = self.skills.get(name)
        if found is None:
            return None
        capability, _, skill = found
        kinds = {e.namespace: e.kind for e in capability.exposures}
        out: dict[str, Any] = {"name": skill.get("name"), "description": skill.get("description")}
        for key in SKILL_FIELDS:
            value = skill.get(key, DEFAULTS.get(key))
            if value is not None:
                out[key] = value
        if skill.get("location") is not None:
            out["location"] = skill["location"]
        tools = []
        for tool in skill.get("tools") or []:
            if not isinstance(tool, Mapping):
                continue
            entry: dict[str, Any] = {"name": tool.get("name"), "description": tool.get("description")}
            source = tool.get("from")
            if isinstance(source, Mapping):
                namespace = source.get("sourceNamespace")
                entry["type"] = "derived"
                entry["invocationRef"] = {
                    "targetNamespace": namespace,
                    "action": source.get("action"),
                    "mode": kinds.get(namespace),
                }
            else:
                entry["type"] = "instruction"
                entry["instruction"] = tool.get("instruction")
            tools.append(entry)
        out["tools"] = tools
        return out

    def folder(self, name: str) -> Path | None:
        found = self.skills.get(name)
        folder = _folder(found[2].get("location")) if found else None
        return folder if folder is not None and folder.is_dir() else None

    # -- HTTP --------------------------------------------------------------------------------

    @staticmethod
    def route_of(path: str) -> str:
        """The route template for metrics and the log: labels must not grow with every path asked for."""
        parts = path.strip("/").split("/")
        if parts[0] != "skills":
            return "(unmatched)"
        if len(parts) == 1:
            return "/skills"
        rest = parts[2:3]
        if len(parts) > 3 and parts[2] == "contents":
            rest = ["contents", "{file}"]
        elif rest not in ([], ["contents"], ["download"]) or len(parts) > 3:
            return "(unmatched)"
        return "/".join(("", "skills", "{name}", *rest))

    async def answer(self, request: Request) -> Response:
        parts = [unquote(p) for p in request.raw_path.split("?", 1)[0].strip("/").split("/")]
        if not parts or parts[0] != "skills":
            return _not_found("no route matches this path")
        if request.method not in ("GET", "HEAD"):
            response = problem(405, "method-not-allowed", "Method not allowed", "allowed methods: GET")
            response.headers["Allow"] = "GET"
            return response
        if len(parts) == 1:
            return json_response(self.catalog())
        name = parts[1]
        if name not in self.skills:
            return _not_found(f"no skill named {name!r}")
        if len(parts) == 2:
            return json_response(self.detail(name))
        folder = self.folder(name)
        if parts[2] == "contents" and len(parts) == 3:
            if folder is None:
                return _not_found(f"skill {name!r} has no readable location")
            files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
            return json_response({"name": name, "count": len(files), "files": files})
        if parts[2] == "contents":
            if folder is None:
                return _not_found(f"skill {name!r} has no readable location")
            target = _inside(folder, parts[3:])
            if target is None or not target.is_file():
                return _not_found("no such file in the skill")
            content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if target.suffix.lower() in (".md", ".markdown"):
                content_type = "text/markdown"
            return Response(body=target.read_bytes(), content_type=content_type)
        if parts[2] == "download" and len(parts) == 3:
            if folder is None:
                return _not_found(f"skill {name!r} has no readable location")
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        archive.write(path, str(path.relative_to(folder)))
            headers = {"Content-Disposition": f'attachment; filename="{name}.zip"'}
            return Response(body=buffer.getvalue(), content_type="application/zip", headers=headers)
        return _not_found("no route matches this path")


def _inside(folder: Path, parts: Sequence[str]) -> Path | None:
    if any(p in ("", ".", "..") or "/" in p or "\\" in p or "\x00" in p for p in parts):
        return None
    root = folder.resolve()
    target = root.joinpath(*parts).resolve()
    return target if target.is_relative_to(root) else None


def _not_found(detail: str) -> Response:
    return problem(404, "not-found", "Not found", detail)
