"""`management.scripting` of the control exposure (schema `ScriptingManagementSpec`), made effective."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LANGUAGES = ("javascript", "python", "groovy")
SUPPORTED = frozenset({"javascript", "python"})
DEFAULT_TIMEOUT_MS = 60000
DEFAULT_STATEMENT_LIMIT = 100000


@dataclass(frozen=True, slots=True)
class ScriptingSettings:
    enabled: bool = True
    enabled_by: str = "default"  # management.scripting.enabled | NAFTIKO_SCRIPTING | default
    default_location: str | None = None
    default_language: str | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    statement_limit: int = DEFAULT_STATEMENT_LIMIT
    allowed_languages: tuple[str, ...] | None = None  # None: every language this runtime supports

    def refusal(self, language: str) -> str | None:
        """Why a step of this language may not run, or None when it may."""
        if not self.enabled:
            if self.enabled_by == "NAFTIKO_SCRIPTING":
                return "scripting is disabled by the environment variable NAFTIKO_SCRIPTING=false"
            return "scripting is disabled (management.scripting.enabled: false)"
        if self.allowed_languages is not None and language not in self.allowed_languages:
            allowed = ", ".join(self.allowed_languages) or "none"
            return f"language {language!r} is not in management.scripting.allowedLanguages ({allowed})"
        return None

    def as_json(self) -> dict[str, Any]:
        """What `GET /scripting` on the control port reports."""
        return {
            "enabled": self.enabled,
            "enabledBy": self.enabled_by,
            "defaultLocation": self.default_location,
            "defaultLanguage": self.default_language,
            "timeout": self.timeout_ms,
            "statementLimit": self.statement_limit,
            "allowedLanguages": list(self.allowed_languages or sorted(SUPPORTED)),
            "supportedLanguages": sorted(SUPPORTED),
            "available": True,
        }


def scripting_spec(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The first control exposure's `management.scripting` ({} when there is none)."""
    capability = document.get("capability") if isinstance(document, Mapping) else None
    exposes = capability.get("exposes") if isinstance(capability, Mapping) else None
    for exposure in exposes if isinstance(exposes, list) else ():
        if isinstance(exposure, Mapping) and exposure.get("type") == "control":
            management = exposure.get("management")
            spec = management.get("scripting") if isinstance(management, Mapping) else None
            if isinstance(spec, Mapping):
                return spec
    return {}


def effective_settings(spec: Mapping[str, Any], environ: Mapping[str, str]) -> ScriptingSettings:
    """The file's `enabled` wins; without one, `NAFTIKO_SCRIPTING=false` disables scripting."""
    enabled, enabled_by = True, "default"
    if isinstance(spec.get("enabled"), bool):
        enabled, enabled_by = spec["enabled"], "management.scripting.enabled"
    elif environ.get("NAFTIKO_SCRIPTING", "").strip().lower() in ("false", "0", "no", "off"):
        enabled, enabled_by = False, "NAFTIKO_SCRIPTING"
    allowed = spec.get("allowedLanguages")
    return ScriptingSettings(
        enabled=enabled,
        enabled_by=enabled_by,
        default_location=_text(spec.get("defaultLocation")),
        default_language=_text(spec.get("defaultLanguage")),
        timeout_ms=_positive(spec.get("timeout"), DEFAULT_TIMEOUT_MS),
        statement_limit=_positive(spec.get("statementLimit"), DEFAULT_STATEMENT_LIMIT),
        allowed_languages=tuple(str(a) for a in allowed) if isinstance(allowed, list) else None,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _positive(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else default
