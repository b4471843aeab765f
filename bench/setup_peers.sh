#!/usr/bin/env bash
# Install what the benchmarks need besides the project: the peers (FastMCP, Arcade) in their own
# venv bench/.venv-peers (never in the project's dependencies), py-spy there too, and Debian's
# nginx and wrk. Idempotent: run it again to repair. Usage: bash bench/setup_peers.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peers"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-peers.txt"
"$venv/bin/python" -m pip freeze --disable-pip-version-check > "$here/.venv-peers/freeze.txt"
echo "peers installed in $venv (full list: $venv/freeze.txt)"

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "missing ${missing[*]}: install them with apt-get (as root); the benchmark skips what is missing" >&2
  fi
fi
