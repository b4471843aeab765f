"""Script files: `file` and `dependencies` are relative paths inside the step's `location`.

`location` is a `file:///` URI of a folder; `file:///./x` (and `file://./x`) is relative to the
capability file, as bind locations are. A path's segments must match `[a-zA-Z0-9._-]+` (the
schema's rule), `..` is refused, and the file found must still be inside the folder once
links are followed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

MAX_SCRIPT_BYTES = 1 << 20
_SEGMENT = re.compile(r"[a-zA-Z0-9._-]+")


class ScriptSourceError(ValueError):
    """A script file that cannot be used: the message names it and why."""


@dataclass(frozen=True, slots=True)
class ScriptFile:
    name: str  # as written in the step
    path: Path
    text: str


def location_folder(location: str, base_dir: Path) -> Path:
    if not location.startswith("file:"):
        raise ScriptSourceError(f"location {location!r} is not a file:/// URI")
    parsed = urlparse(location)
    raw = unquote(parsed.netloc + parsed.path) if parsed.netloc == "." else unquote(parsed.path)
    if raw.startswith("/./") or raw == "/.":
        raw = raw[1:]
    folder = Path(raw) if raw.startswith("/") else base_dir / raw
    return folder.resolve()


def read_script(location: str, name: str, base_dir: Path) -> ScriptFile:
    """The script `name` inside `location`, read, or ScriptSourceError saying what is wrong."""
    folder = location_folder(location, base_dir)
    segments = name.split("/")
    if any(s in ("", ".", "..") or not _SEGMENT.fullmatch(s) for s in segments):
        raise ScriptSourceError(
            f"script path {name!r} must be relative to the location, its segments [a-zA-Z0-9._-]+ and no '..'"
        )
    path = folder.joinpath(*segments).resolve()
    if not path.is_relative_to(folder):
        raise ScriptSourceError(f"script {name!r} is outside its location {location} (it links to {path})")
    if not path.is_file():
        raise ScriptSourceError(f"script {name!r} not found in {location} ({path})")
    if path.stat().st_size > MAX_SCRIPT_BYTES:
        raise ScriptSourceError(f"script {name!r} is larger than {MAX_SCRIPT_BYTES} bytes")
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptSourceError(f"script {name!r} cannot be read: {exc}") from None
    return ScriptFile(name, path, text)
