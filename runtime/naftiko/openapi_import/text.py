"""Names and prose: kebab-case identifiers, environment variable names, trimmed descriptions."""

from __future__ import annotations

import re
from typing import Any

# -- text helpers -------------------------------------------------------------------------------------


def kebab(text: str) -> str:
    """`listPets` → `list-pets`, `add_device` → `add-device`, `Customer.io Track API` → `customer-io-track-api`."""
    text = re.sub(r"([A-Z])([A-Z]+)s(?![a-z])", lambda m: m.group(1) + m.group(2).lower() + "s", str(text))  # IDs, URLs
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", text)
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return re.sub(r"-{2,}", "-", text)


def _env_name(namespace: str) -> str:
    name = re.sub(r"[^A-Z0-9]+", "_", namespace.upper()).strip("_") or "API"
    return name if name[0].isalpha() else f"API_{name}"


def _is_kebab(name: str) -> bool:
    return bool(re.fullmatch(r"[a-zA-Z0-9-]+", name))


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_TAG = re.compile(r"<[^>]+>")
_TEMPLATE_TAG = re.compile(r"\{%.*?%\}", re.DOTALL)  # documentation directives (admonitions, tabs)


def _clean_inline(text: str) -> str:
    text = _TEMPLATE_TAG.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = re.sub(r"\*\*|__", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _brief(text: Any, limit: int) -> str:
    """The first meaningful paragraph of a Markdown description, at most `limit` characters."""
    if not isinstance(text, str) or not text.strip():
        return ""
    for paragraph in re.split(r"\n\s*\n", text):
        stripped = paragraph.strip()
        if not stripped or stripped.startswith(("#", "|", "```", ":::", "{%", "<img", "![", ">")):
            continue
        lines = [
            line for line in stripped.splitlines() if not re.match(r"\s*([-*+]|\d+\.)\s", line)
        ] or stripped.splitlines()
        cleaned = _clean_inline(" ".join(lines))
        if cleaned.endswith(":"):  # leads into a list or a table: end on the sentence before
            sentences = re.split(r"(?<=[.!?])\s+", cleaned)
            cleaned = " ".join(sentences[:-1]) if len(sentences) > 1 else cleaned[:-1].rstrip() + "."
        if len(cleaned) >= 3:
            return _cap(cleaned, limit)
    return ""


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if end >= limit // 3:
        return cut[: end + 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


def _free(name: str, used: set[str] | dict[str, Any]) -> str:
    """`name`, or `name-2`, `name-3`… when it is taken."""
    candidate, index = name, 2
    while candidate in used:
        candidate, index = f"{name}-{index}", index + 1
    return candidate
