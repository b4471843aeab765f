"""Compiling a `script` step at load: its language and folder (or the control port's
defaults), its files read and syntax-checked, its program registered with the capability's
script runtime. Problems are reported at the step, with the file and line in the message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..scripting.runtime import syntax_errors
from ..scripting.settings import SUPPORTED
from ..scripting.sources import ScriptSourceError, read_script
from ..spec.diagnostics import JsonPath
from .steps_script import ScriptStep

if TYPE_CHECKING:
    from .capability import Target
    from .compile import _Compiler


def script_step(compiler: _Compiler, spec: Mapping[str, Any], target: Target, at: JsonPath) -> ScriptStep | None:
    runtime = compiler.scripting
    settings = runtime.settings
    name = target.name
    language = spec.get("language") or settings.default_language
    location = spec.get("location") or settings.default_location
    if language not in SUPPORTED:
        problem = (
            f"script step {name!r}: {language} scripts are not supported by this runtime (javascript and python are)"
            if language
            else f"script step {name!r}: no language, and no management.scripting.defaultLanguage on the control port"
        )
        compiler.problem(problem, (*at, "language"))
        return None
    if not location:
        compiler.problem(
            f"script step {name!r}: no location, and no management.scripting.defaultLocation on the control port",
            (*at, "file"),
        )
        return None
    names = [*(str(d) for d in spec.get("dependencies") or []), str(spec.get("file", ""))]
    files = []
    for index, file_name in enumerate(names):
        place = (*at, "file") if index == len(names) - 1 else (*at, "dependencies", index)
        try:
            files.append(read_script(str(location), file_name, compiler.document.base_dir))
        except ScriptSourceError as exc:
            compiler.problem(f"script step {name!r}: {exc}", place)
    if len(files) != len(names):
        return None
    errors = syntax_errors(language, files)
    if errors:
        compiler.problem(f"script step {name!r}: {'; '.join(errors)}", (*at, "file"))
        return None
    key = "/".join(str(part) for part in at)
    runtime.add(language, key, files)
    return ScriptStep(name, language, key, target, runtime, settings.refusal(language))
