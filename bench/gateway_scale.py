"""How `naftiko run --gateway` grows with the number of files (issue #21).

For each size N: a folder of the first N files of ../shared/corpus/alpha2 that `naftiko validate`
accepts (sorted by path; a file whose exposure namespace an earlier file already took is passed
over, since two such files make the gateway refuse to start), copied flat into a temporary
folder; `naftiko run --gateway --dry-run FOLDER` started on its own loopback address; ready is
the first 200 from `/health` on a REST port. Then one file is added, edited and deleted and the
time until each change answers (or stops answering) is measured.

Run:  python bench/gateway_scale.py [--sizes 100,500,2000] [--no-reload]
Prints seconds and MB (resident set at ready) in total and per file. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from gateway_corpus import copy_flat, corpus_files  # noqa: E402 - the tests' choice of files, shared

CORPUS = Path(os.environ.get("NAFTIKO_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "corpus" / "alpha2"
HOST = "127.0.0.9"  # not 127.0.0.1: the corpus files all want 8080 and 9090, which others may hold there
_SERVING = re.compile(r"serving (http://\S+) \(rest gateway")


def answers(url: str) -> int | None:
    request = urllib.request.Request(url, headers={"Host": "localhost"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_for(check, timeout: float) -> float | None:
    """Seconds until `check()` holds, or None."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if check():
            return time.perf_counter() - started
        time.sleep(0.05)
    return None


def rss_mb(pid: int) -> float:
    """The resident set of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024


def measure(files: list[Path], reload: bool) -> dict[str, float | None]:
    with tempfile.TemporaryDirectory(prefix="gateway-scale-") as tmp, tempfile.TemporaryFile("w+") as log:
        folder = Path(tmp) / "capabilities"
        folder.mkdir()
        copy_flat(files, folder)
        command = [sys.executable, "-m", "naftiko.cli", "run", "--gateway", "--dry-run", "--host", HOST, str(folder)]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            base = None
            while base is None and time.perf_counter() - started < 300 and process.poll() is None:
                log.seek(0)
                found = _SERVING.search(log.read())
                base = found.group(1) if found else None
                time.sleep(0.02)
            if base is None or wait_for(lambda: answers(base + "/health") == 200, 60) is None:
                log.seek(0)
                raise RuntimeError(f"the gateway did not get ready:\n{log.read()[-3000:]}")
            figures: dict[str, float | None] = {"ready": time.perf_counter() - started}
            figures["rss"] = rss_mb(process.pid)
            if reload:
                figures.update(reload_times(folder, files[0], base))
            return figures
        finally:
            process.terminate()
            process.wait(30)


def reload_times(folder: Path, sample: Path, base: str) -> dict[str, float | None]:
    """Seconds for an added, an edited and a deleted file to take effect (the file: a copy of
    `sample` with its exposure namespaces renamed, so that it conflicts with nothing)."""
    text = sample.read_text(encoding="utf-8")
    exposures = yaml.safe_load(text)["capability"]["exposes"]
    rest = next(e["namespace"] for e in exposures if e["type"] == "rest")
    added = folder / "zz-added.yaml"
    added.write_text(renamed(text, exposures, "zz-added-"), encoding="utf-8")
    times = {"add": wait_for(lambda: answers(f"{base}/zz-added-{rest}/openapi.json") == 200, 30)}
    added.write_text(renamed(text, exposures, "zz-edited-"), encoding="utf-8")
    times["edit"] = wait_for(lambda: answers(f"{base}/zz-edited-{rest}/openapi.json") == 200, 30)
    added.unlink()
    times["delete"] = wait_for(lambda: answers(f"{base}/zz-edited-{rest}/openapi.json") == 404, 30)
    return times


def renamed(text: str, exposures: list[dict], prefix: str) -> str:
    """`text` with each exposure namespace prefixed."""
    for exposure in exposures:
        name = re.escape(exposure["namespace"])
        text = re.sub(rf"(namespace:\s*[\"']?){name}\b", rf"\g<1>{prefix}{exposure['namespace']}", text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,500,2000", help="folder sizes, comma-separated")
    parser.add_argument("--no-reload", action="store_true", help="skip the add/edit/delete timings")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    files = corpus_files(CORPUS, max(sizes))
    print(f"gateway_scale: {len(files)} files chosen from {CORPUS} ({os.cpu_count()} cores)")
    print(
        f"{'files':>6} {'YAML MB':>8} {'ready s':>8} {'ms/file':>8} {'s/YAML MB':>10} {'RSS MB':>7} {'KB/file':>8}"
        "  reload add/edit/delete s"
    )
    for size in sizes:
        figures = measure(files[:size], not args.no_reload)
        megabytes = sum(p.stat().st_size for p in files[:size]) / 1e6
        reload = "/".join("-" if figures.get(k) is None else f"{figures[k]:.2f}" for k in ("add", "edit", "delete"))
        print(
            f"{size:>6} {megabytes:>8.1f} {figures['ready']:>8.1f} {1000 * figures['ready'] / size:>8.1f} "
            f"{figures['ready'] / megabytes:>10.2f} {figures['rss']:>7.0f} {1024 * figures['rss'] / size:>8.0f}"
            f"  {reload if not args.no_reload else ''}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
