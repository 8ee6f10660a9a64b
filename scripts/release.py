"""Build every release artifact into dist/ and prove each one works before keeping it.

Run through ``scripts/release`` (which sets up .venv first). Artifacts:

- ``cumulus-message-adapter.zip``: the Lambda layer (``bundle --portable``), the name
  Cumulus's Terraform module downloads; checked by unzipping it and running
  ``cma_bin/cma`` with no Python on PATH, and against Lambda's size limits;
- wheel and sdist of ``cumulus-message-adapter`` and of ``cumulus-message-adapter-python``
  (clients/python); each installed into a new venv that then runs one command;
- ``cumulus-message-adapter-client-<version>.tgz`` (clients/node, ``npm pack``); installed
  into an empty project that runs a handler through the layer's executable.

Every artifact must carry the version in message_adapter/__init__.py and the LICENSE.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from message_adapter import __version__  # noqa: E402
from message_adapter.bundle import (  # noqa: E402
    LAMBDA_UNZIPPED_LIMIT,
    LAMBDA_ZIPPED_LIMIT,
    MANIFEST,
    BundleError,
    check_lambda_limits,
)

LAYER = "cumulus-message-adapter.zip"
LAYER_GLIBC_LIMIT = (2, 31)  # Amazon Linux 2023 has 2.34; the portable build aims at 2.26
REQUEST = (
    b'loadNestedEvent\n{"event": {"meta": {"name": "X"}, '
    b'"task_config": {"name": "{$.meta.name}"}}}\n<EOC>\n<EXIT>\n'
)
ANSWER = b'{"input":null,"config":{"name":"X"}}\n<EOC>\n'
EVENT = {
    "cumulus_meta": {"execution_name": "e1", "message_source": "sfn", "state_machine": "sm"},
    "meta": {"name": "X", "workflow_tasks": {}},
    "task_config": {"name": "{$.meta.name}"},
    "payload": {"granules": [{"granuleId": "g1"}]},
}
NODE_HANDLER = """
const cma = require('cumulus-message-adapter-client');
const event = JSON.parse(process.argv[2]);
const context = { functionName: 'release-check', functionVersion: '1' };
cma.runCumulusTask((nested) => ({ name: nested.config.name }), event, context)
  .then(async (next) => { console.log(JSON.stringify(next.payload)); await cma.close(); },
        (error) => { console.error(error); process.exit(1); });
"""
PYTHON_HANDLER = """
import json, sys
from run_cumulus_task import __version__, run_cumulus_task
out = run_cumulus_task(lambda event, context: {"name": event["config"]["name"]},
                       json.loads(sys.argv[1]), {"function_name": "release-check"})
print(json.dumps({"version": __version__, "payload": out["payload"]}))
"""


class ReleaseError(Exception):
    """An artifact could not be built or failed its check; the message says which."""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(argv: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    """Run a command; on failure raise ReleaseError with its output."""
    done = subprocess.run([str(part) for part in argv], capture_output=True, **kwargs)
    if done.returncode != 0:
        output = (
            done.stderr if isinstance(done.stderr, str) else done.stderr.decode(errors="replace")
        )
        stdout = (
            done.stdout if isinstance(done.stdout, str) else done.stdout.decode(errors="replace")
        )
        raise ReleaseError(
            f"{' '.join(map(str, argv))} failed (exit {done.returncode}):\n{stdout[-3000:]}"
            f"{output[-3000:]}"
        )
    return done


def prepare_dist(dist: Path) -> None:
    """An empty ``dist``; earlier artifacts are removed, anything else is refused."""
    if dist.exists():
        strangers = [
            entry.name
            for entry in dist.iterdir()
            if not entry.name.endswith((".whl", ".tar.gz", ".tgz", ".zip"))
        ]
        if strangers:
            raise ReleaseError(
                f"{dist} holds files that are not release artifacts ({', '.join(strangers)}); "
                "move them away or pass another --dist"
            )
        shutil.rmtree(dist)
    dist.mkdir(parents=True)


def without_python_path() -> str:
    """A PATH with node and npm but no python (as on a Node Lambda runtime)."""
    folder = Path(tempfile.mkdtemp(prefix="release-path-"))
    for tool in ("node", "npm", "unzip"):
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    return str(folder)


# ---- the layer -----------------------------------------------------------------------------


def build_layer(dist: Path, prebuilt: Path | None, work: Path) -> Path:
    target = dist / LAYER
    if prebuilt is not None:
        log(f"layer: using {prebuilt}")
        shutil.copy2(prebuilt, target)
        return target
    log("layer: cumulus-message-adapter bundle --portable (first build: a few minutes)")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "message_adapter",
            "bundle",
            str(work / "layer"),
            "--portable",
            "--zip",
            str(target),
            "--force",
        ],
        check=False,
    ).check_returncode()
    return target


def check_layer(layer: Path, work: Path) -> Path:
    """Unzip the layer as Lambda does into /opt, run its executable; return the unpacked dir."""
    opt = work / "opt"
    shutil.rmtree(opt, ignore_errors=True)
    with zipfile.ZipFile(layer) as archive:
        names = set(archive.namelist())
        for required in ("__main__.py", "cma_bin/cma", MANIFEST, "LICENSE"):
            if required not in names:
                raise ReleaseError(f"{layer} has no {required} at its top level")
        unzipped = sum(info.file_size for info in archive.infolist())
    run(["unzip", "-q", layer, "-d", opt])  # unzip keeps the executable bits
    manifest = json.loads((opt / MANIFEST).read_text())
    glibc = tuple(int(part) for part in (manifest.get("executable_glibc") or "99.0").split("."))
    if glibc > LAYER_GLIBC_LIMIT:
        raise ReleaseError(
            f"the layer's cma_bin/cma needs glibc {manifest.get('executable_glibc')}, newer "
            "than Lambda's; build it with bundle --portable"
        )
    done = subprocess.run(
        [opt / "cma_bin" / "cma", "stream"],
        input=REQUEST,
        capture_output=True,
        env={"PATH": without_python_path()},
        timeout=60,
    )
    if done.returncode != 0 or done.stdout != ANSWER:
        raise ReleaseError(f"the layer's cma_bin/cma answered {done.stdout!r}: {done.stderr!r}")
    zipped = layer.stat().st_size
    check_lambda_limits(unzipped, zipped)
    log(
        f"layer: ok ({manifest['version']}, cma_bin/cma needs glibc "
        f"{manifest['executable_glibc']}); zipped {zipped / 2**20:.1f} MB of Lambda's "
        f"{LAMBDA_ZIPPED_LIMIT / 2**20:.0f} MB, unzipped {unzipped / 2**20:.1f} MB of "
        f"{LAMBDA_UNZIPPED_LIMIT / 2**20:.0f} MB"
    )
    return opt


# ---- Python distributions ------------------------------------------------------------------


def build_python(project: Path, dist: Path) -> None:
    if subprocess.run([sys.executable, "-c", "import build"], capture_output=True).returncode:
        log("python: installing `build` into this environment")
        run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "build"])
    log(f"python: building the sdist and wheel of {project.relative_to(REPO) or '.'}")
    run([sys.executable, "-m", "build", "--outdir", dist, project])


def fresh_venv(where: Path, requirement: Path) -> Path:
    """A new venv with ``requirement`` (a wheel or sdist) installed; returns its bin dir."""
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    python = where / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement])
    return where / "bin"


def check_adapter_dist(artifact: Path, work: Path) -> None:
    bindir = fresh_venv(work / f"venv-{artifact.name}", artifact)
    done = run([bindir / "cumulus-message-adapter", "stream"], input=REQUEST, cwd=work, timeout=120)
    if done.stdout != ANSWER:
        raise ReleaseError(f"{artifact.name}: cumulus-message-adapter answered {done.stdout!r}")
    version = run([bindir / "cumulus-message-adapter", "--version"], text=True).stdout
    log(f"python: {artifact.name}: ok (`cumulus-message-adapter stream`; {version.strip()})")


def check_client_dist(artifact: Path, opt: Path, work: Path) -> None:
    bindir = fresh_venv(work / f"venv-{artifact.name}", artifact)
    env = {"PATH": os.environ.get("PATH", ""), "CUMULUS_MESSAGE_ADAPTER_DIR": str(opt)}
    done = run(
        [bindir / "python", "-c", PYTHON_HANDLER, json.dumps(EVENT)],
        env=env,
        text=True,
        cwd=work,
        timeout=120,
    )
    result = json.loads(done.stdout)
    if result != {"version": __version__, "payload": {"name": "X"}}:
        raise ReleaseError(f"{artifact.name}: run_cumulus_task through the layer gave {result}")
    log(f"python: {artifact.name}: ok (run_cumulus_task through the unpacked layer)")


# ---- the Node package ----------------------------------------------------------------------


def build_node(dist: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise ReleaseError("npm is needed for the Node client's tarball (Node 18+)")
    log("node: npm pack clients/node")
    done = run(
        [npm, "pack", "--json", "--pack-destination", dist],
        cwd=REPO / "clients" / "node",
        text=True,
    )
    return dist / json.loads(done.stdout)[0]["filename"]


def check_node_package(tarball: Path, opt: Path, work: Path) -> None:
    project = work / "node-project"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir()
    (project / "package.json").write_text('{"name": "release-check", "private": true}\n')
    run(
        ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", tarball],
        cwd=project,
    )
    (project / "handler.js").write_text(NODE_HANDLER)
    env = {
        "PATH": without_python_path(),
        "CUMULUS_MESSAGE_ADAPTER_DIR": str(opt),
        "USE_CMA_BINARY": "true",
    }
    done = run(
        ["node", "handler.js", json.dumps(EVENT)], cwd=project, env=env, text=True, timeout=120
    )
    if json.loads(done.stdout) != {"name": "X"}:
        raise ReleaseError(f"{tarball.name}: the handler returned {done.stdout!r}")
    log(f"node: {tarball.name}: ok (a handler through the layer's cma_bin/cma, no python)")


# ---- what every artifact carries -------------------------------------------------------------


def artifact_facts(artifact: Path) -> tuple[str | None, bool]:
    """``(version, has LICENSE)`` read from the artifact itself."""
    name = artifact.name
    if name.endswith(".whl"):
        with zipfile.ZipFile(artifact) as archive:
            names = archive.namelist()
            [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
            version = _header(archive.read(metadata).decode(), "Version")
            return version, any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    if name.endswith(".tar.gz"):
        with tarfile.open(artifact) as archive:
            names = archive.getnames()
            [info] = [n for n in names if n.count("/") == 1 and n.endswith("/PKG-INFO")]
            version = _header(archive.extractfile(info).read().decode(), "Version")
            return version, any(n.count("/") == 1 and n.endswith("/LICENSE") for n in names)
    if name.endswith(".tgz"):
        with tarfile.open(artifact) as archive:
            package = json.load(io.BytesIO(archive.extractfile("package/package.json").read()))
            return package["version"], "package/LICENSE" in archive.getnames()
    if name.endswith(".zip"):
        with zipfile.ZipFile(artifact) as archive:
            manifest = json.loads(archive.read(MANIFEST))
            return manifest["version"], "LICENSE" in archive.namelist()
    return None, False


def _header(text: str, key: str) -> str | None:
    for line in text.splitlines():
        if line.startswith(f"{key}: "):
            return line.split(": ", 1)[1].strip()
        if not line:
            break
    return None


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.0f} KB"


def check_versions(dist: Path) -> list[str]:
    """Every artifact carries ``__version__`` and the LICENSE; returns the summary lines."""
    lines, problems = [], []
    for artifact in sorted(dist.iterdir()):
        version, has_license = artifact_facts(artifact)
        lines.append(
            f"  {artifact.name:<52} {_size(artifact.stat().st_size):>9}  "
            f"version {version}  {'LICENSE' if has_license else 'NO LICENSE'}"
        )
        if version != __version__:
            problems.append(f"{artifact.name} carries version {version}, not {__version__}")
        if not has_license:
            problems.append(f"{artifact.name} holds no LICENSE")
    if problems:
        raise ReleaseError("; ".join(problems))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="default: dist/")
    parser.add_argument(
        "--layer",
        type=Path,
        help="use this layer zip (from `bundle --portable --zip`) instead of building one; "
        "it is checked all the same",
    )
    args = parser.parse_args(argv)
    dist = args.dist.absolute()
    started = time.monotonic()
    try:
        prepare_dist(dist)
        with tempfile.TemporaryDirectory(prefix="cma-release-") as scratch:
            work = Path(scratch)
            layer = build_layer(dist, args.layer and args.layer.absolute(), work)
            opt = check_layer(layer, work)
            build_python(REPO, dist)
            build_python(REPO / "clients" / "python", dist)
            for artifact in sorted(dist.glob("cumulus_message_adapter-*")):
                check_adapter_dist(artifact, work)
            for artifact in sorted(dist.glob("cumulus_message_adapter_python-*")):
                check_client_dist(artifact, opt, work)
            check_node_package(build_node(dist), opt, work)
        lines = check_versions(dist)
    except (ReleaseError, BundleError, subprocess.CalledProcessError) as error:
        log(f"release failed: {error}")
        return 1
    print(f"release {__version__} in {dist} ({time.monotonic() - started:.0f} s):")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
