"""Masking of secret values in everything the runtime prints or returns about a request."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "****"
SECRET_NAME = re.compile(r"(?i)(pass|secret|token|key|credential|auth|private)")


class Masker:
    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Short values would mask ordinary text everywhere; real secrets are longer than 3 characters.
        merged = {*self._secrets, *(s for s in secrets if s and len(s) > 3)}
        self._secrets = sorted(merged, key=len, reverse=True)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value
