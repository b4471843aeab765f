"""Hot reload: files dropped, edited or deleted in a served folder take effect without a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from support import eventually, free_port, status

CAPABILITY = """naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: {name}-api
      baseUri: https://api.example.com
      resources:
        - name: items
          path: /{name}/{{id}}
          operations:
            - name: get-item
              method: GET
  exposes:
    - type: rest
      namespace: {name}-rest
      port: {port}
      resources:
        - path: /{name}/{{id}}
          operations:
            - method: GET
              name: get-item
              call: {name}-api.get-item
"""


def test_add_edit_break_and_delete_files_in_a_served_folder(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (tmp_path / "alpha.yaml").write_text(CAPABILITY.format(name="alpha", port=port))
    process = subprocess.Popen(
        [sys.executable, "-m", "naftiko.cli", "run", "--dry-run", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert eventually(lambda: status(f"{base}/health") == 200, timeout=30)
        assert status(f"{base}/alpha/1") == 200 and status(f"{base}/beta/1") == 404

        (tmp_path / "beta.yaml").write_text(CAPABILITY.format(name="beta", port=port))
        assert eventually(lambda: status(f"{base}/beta/1") == 200)
        assert status(f"{base}/alpha/1") == 200

        (tmp_path / "beta.yaml").write_text("naftiko: 1.0.0-alpha2\ncapability: [broken\n")
        time.sleep(1.5)
        assert status(f"{base}/beta/1") == 200  # the previous version keeps serving

        (tmp_path / "beta.yaml").write_text(CAPABILITY.format(name="beta", port=port).replace("/beta/", "/gamma/"))
        assert eventually(lambda: status(f"{base}/gamma/1") == 200)
        assert status(f"{base}/beta/1") == 404

        (tmp_path / "beta.yaml").unlink()
        assert eventually(lambda: status(f"{base}/gamma/1") == 404)
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=5) as response:
            assert list(json.loads(response.read())["paths"]) == ["/alpha/{id}"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "malformed YAML" in err and "previous version keeps serving" in err
