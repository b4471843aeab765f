"""Folder walking for `validate` and `run`: tool and dot folders are pruned, named paths always count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from naftiko import validation
from naftiko.engine.compile import CompileOptions
from naftiko.run_command import load_capabilities
from naftiko.spec.diagnostics import CapabilityError
from naftiko.validation import SKIPPED_FOLDERS, discover

GOOD = """naftiko: 1.0.0-alpha2
info:
  label: Demo
  description: A demo capability.
capability:
  consumes:
    - type: http
      namespace: {ns}
      baseUri: https://api.example.com
      resources:
        - name: items
          path: /items
          operations:
            - name: list-items
              method: GET
  exposes:
    - type: rest
      namespace: {ns}-rest
      port: 8080
      resources:
        - path: /{ns}
          name: items
          operations:
            - method: GET
              name: list-items
              call: {ns}.list-items
"""
BAD = "naftiko: 1.0.0-alpha2\ncapability: [1, 2\n"
IGNORED = sorted({*SKIPPED_FOLDERS, ".venv", ".git", ".tox", ".github", "..2024_01_01"})


def put(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A project folder: one good capability at the top, a broken file in every ignored folder."""
    put(tmp_path, "good.yaml", GOOD.format(ns="top"))
    for name in IGNORED:
        put(tmp_path / name / "deeper", "broken.yml", BAD)
        put(tmp_path / "sub" / name, "broken.yaml", BAD)
    return tmp_path


def test_the_ignored_folders_are_the_ones_the_issue_names() -> None:
    assert SKIPPED_FOLDERS == {"node_modules", "venv", "build", "dist", "__pycache__"}


def test_ignored_and_dot_folders_are_skipped_at_any_depth(tree: Path) -> None:
    assert discover([str(tree)]) == [tree / "good.yaml"]


def test_a_bad_file_in_an_ordinary_subfolder_still_counts(tree: Path) -> None:
    bad = put(tree / "sub" / "builds", "bad.yaml", BAD)  # a name that merely resembles an ignored one
    also = put(tree / "venvs" / "x", "b.yml", BAD)
    assert discover([str(tree)]) == sorted([tree / "good.yaml", bad, also])


def test_a_path_named_on_the_command_line_is_always_taken(tree: Path) -> None:
    inside = tree / "node_modules" / "deeper" / "broken.yml"
    assert discover([str(inside)]) == [inside]
    assert discover([str(tree / ".git")]) == [tree / ".git" / "deeper" / "broken.yml"]
    assert discover([str(tree / "build" / "deeper")]) == [tree / "build" / "deeper" / "broken.yml"]
    # but below a named folder the rules apply again
    put(tree / "build" / "node_modules", "x.yaml", BAD)
    assert discover([str(tree / "build")]) == [tree / "build" / "deeper" / "broken.yml"]


def test_the_walk_never_enters_a_pruned_folder(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pruned while walking, not listed and filtered: a node_modules of 100k files costs nothing."""
    scanned: list[str] = []
    real_scandir = os.scandir

    def recording_scandir(path=".") -> object:
        scanned.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", recording_scandir)
    assert discover([str(tree)]) == [tree / "good.yaml"]
    assert scanned, "os.walk was not used"
    for path in scanned:
        parts = Path(path).relative_to(tree).parts
        assert not any(part in IGNORED for part in parts), path


def test_files_with_other_suffixes_and_symlinked_files(tmp_path: Path) -> None:
    put(tmp_path, "notes.txt", "x")
    put(tmp_path, "a.YAML.bak", "x")
    target = put(tmp_path / "..data", "cap.yaml", GOOD.format(ns="linked"))  # a Kubernetes ConfigMap mount
    (tmp_path / "cap.yaml").symlink_to(target)
    assert discover([str(tmp_path)]) == [tmp_path / "cap.yaml"]


def test_validate_cli_ignores_them(tree: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "validate", str(tree)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1].startswith("1 valid, 0 invalid")
    named = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "validate", str(tree), str(tree / "dist" / "deeper" / "broken.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert named.returncode == 1 and named.stdout.splitlines()[-1].startswith("1 valid, 1 invalid")


def test_run_loads_the_same_files(tree: Path) -> None:
    loaded = load_capabilities([str(tree)], CompileOptions(dry_run=True))
    assert list(loaded) == [tree / "good.yaml"]
    put(tree / "more", "broken.yaml", BAD)
    with pytest.raises(CapabilityError):
        load_capabilities([str(tree)], CompileOptions(dry_run=True))
    assert validation.discover([str(tree / "more")]) == [tree / "more" / "broken.yaml"]
