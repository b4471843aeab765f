"""Time `naftiko validate` over the whole real-world corpus (../shared/corpus/alpha2).

Run: python bench/validate_corpus.py [--strict]
Prints files/s, the verdict counts and the wall time; the bar is ≤ 30 s on the project machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from naftiko.validation import check_files, discover, summary

CORPUS = Path(os.environ.get("NAFTIKO_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "corpus" / "alpha2"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("path", nargs="?", default=str(CORPUS))
    args = parser.parse_args()
    if not Path(args.path).is_dir():
        print(f"corpus not found at {args.path}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    files = discover([args.path])
    reports = check_files(files, strict=args.strict)
    elapsed = time.perf_counter() - started
    mode = "strict" if args.strict else "default"
    print(
        f"validate ({mode}): {len(files)} files in {elapsed:.1f} s ({len(files) / elapsed:.0f} files/s, {os.cpu_count()} cores)"
    )
    print(summary(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
