"""The portable layer on a glibc older than Lambda's: what ``bundle --portable`` promises.

One portable bundle and its layer zip are built per session (cold: a few minutes for the
Debian root and CPython, cached under ~/.cache/cumulus-message-adapter; warm: seconds).
The layer is unpacked into ``/opt`` of a root holding only Debian bullseye's libc6
(glibc 2.31, older than Amazon Linux 2023's 2.34), libgcc-s1, libstdc++6 and zlib1g: no
shell, no Python. ``cma_bin/cma`` runs there through ``chroot``, in its own mount and pid
namespaces with a fresh ``/proc`` (Lambda has one; the launcher finds itself through it).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import message_adapter
from message_adapter import bundle, portable
from message_adapter.bundle import BundleReport
from tests.helpers import MotoServer, free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NODE_CLIENT = REPO / "clients" / "node"
OLD_GLIBC = "2.31"
FLOOR = "2.26"
NESTED_REQUEST = {"event": {"meta": {"name": "X"}, "task_config": {"name": "{$.meta.name}"}}}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.fixture(scope="session")
def portable_layer(tmp_path_factory: pytest.TempPathFactory) -> BundleReport:
    """The portable bundle and its layer zip, built once per session."""
    problems = []
    if platform.machine() != "x86_64":
        problems.append("x86_64")
    if os.geteuid() != 0:
        problems.append("root (debootstrap, chroot)")
    if problems:
        message = f"the portable layer tests need {' and '.join(problems)}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("portable")
    started = time.monotonic()
    report = portable.build_portable_bundle(
        root / "cma", root / "cumulus-message-adapter.zip", log=lambda line: print(line)
    )
    sys.stderr.write(f"\nportable layer built in {time.monotonic() - started:.1f} s\n")
    return report


@dataclass
class OldRoot:
    """A bullseye root (glibc 2.31, nothing else) with the layer unpacked at /opt."""

    path: Path

    def run(
        self, argv: list[str], stdin: bytes = b"", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` (paths inside the root) there, with only ``env`` in its environment."""
        return subprocess.run(
            [
                shutil.which("unshare") or "unshare",
                "--mount",
                "--pid",
                "--fork",
                f"--mount-proc={self.path / 'proc'}",
                shutil.which("chroot") or "chroot",
                str(self.path),
                *argv,
            ],
            input=stdin,
            capture_output=True,
            env=env or {},
            timeout=120,
        )

    def glibc(self) -> str:
        [libc] = (self.path / "lib" / "x86_64-linux-gnu").glob("libc-*.so")
        return libc.name.removeprefix("libc-").removesuffix(".so")


@pytest.fixture(scope="session")
def old_root(portable_layer: BundleReport, tmp_path_factory: pytest.TempPathFactory) -> OldRoot:
    path = tmp_path_factory.mktemp("bullseye-min")
    for deb in portable.test_root_debs():
        subprocess.run(["dpkg-deb", "-x", str(deb), str(path)], check=True)
    for folder in ("proc", "tmp", "task/schemas"):
        (path / folder).mkdir(parents=True)
    subprocess.run(
        ["unzip", "-q", str(portable_layer.zip_path), "-d", str(path / "opt")], check=True
    )
    root = OldRoot(path)
    assert root.glibc() == OLD_GLIBC
    return root


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer(free_port())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto: MotoServer) -> tuple[Any, str]:
    import uuid

    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"cma-portable-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name


def frames(*requests: tuple[str, Any]) -> bytes:
    parts = [f"{command}\n{json.dumps(body)}\n<EOC>\n" for command, body in requests]
    return "".join(parts).encode() + b"<EXIT>\n"


def answers(stdout: bytes) -> list[Any]:
    parts = stdout.split(b"\n<EOC>\n")
    assert parts[-1] == b"", stdout[-300:]
    return [json.loads(part) for part in parts[:-1]]


def objdump_glibc(elf_root: Path) -> dict[str, str]:
    """Newest ``GLIBC_x.y`` each ELF under ``elf_root`` needs, read with ``objdump -T``.

    objdump comes from the build root (binutils is part of build-essential there), so
    the building machine needs no binutils.
    """
    build_root = portable.cache_dir() / f"{portable.SUITE}-root"
    check = build_root / "build" / "elf-check"
    shutil.rmtree(check, ignore_errors=True)
    shutil.copytree(elf_root, check, symlinks=True)
    needs = {}
    try:
        for path in sorted(check.rglob("*")):
            if path.is_symlink() or not path.is_file() or path.read_bytes()[:4] != b"\x7fELF":
                continue
            inside = "/" + str(path.relative_to(build_root))
            dump = subprocess.run(
                ["chroot", str(build_root), "/usr/bin/objdump", "-T", inside],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            versions = [
                word.split("GLIBC_", 1)[1].rstrip(")")
                for word in dump.split()
                if "GLIBC_" in word and word.split("GLIBC_", 1)[1][:1].isdigit()
            ]
            newest = max(versions, key=_version, default="none")
            needs[str(path.relative_to(check))] = newest
    finally:
        shutil.rmtree(check, ignore_errors=True)
    return needs


# ---- the executable's glibc floor --------------------------------------------------------


def test_every_elf_in_cma_bin_needs_at_most_glibc_2_26(portable_layer: BundleReport) -> None:
    needs = objdump_glibc(portable_layer.out / "cma_bin")
    assert len(needs) > 40  # launcher, interpreter, libpython, extension modules, libraries
    too_new = {name: v for name, v in needs.items() if v != "none" and _version(v) > (2, 26)}
    assert too_new == {}
    assert portable_layer.glibc is not None and _version(portable_layer.glibc) <= (2, 26)


def test_vendored_extension_modules_need_at_most_glibc_2_26(
    portable_layer: BundleReport,
) -> None:
    needs = objdump_glibc(portable_layer.out)
    vendored = {name: v for name, v in needs.items() if not name.startswith("cma_bin/")}
    assert any(name.startswith("msgspec/") for name in vendored)
    assert {n: v for n, v in vendored.items() if v != "none" and _version(v) > (2, 26)} == {}


def test_layer_ships_no_library_lambda_must_provide(portable_layer: BundleReport) -> None:
    shipped = {path.name for path in (portable_layer.out / "cma_bin").rglob("*.so*")}
    for name in ("libgcc_s.so.1", "libstdc++.so.6", "libc.so.6", "libm.so.6", "libpthread.so.0"):
        assert name not in shipped
    assert "libpython3.11.so.1.0" in shipped


def test_manifest_records_the_glibc_floor(portable_layer: BundleReport) -> None:
    manifest = json.loads((portable_layer.out / bundle.MANIFEST).read_text())
    assert manifest["executable"] == "cma_bin/cma"
    assert manifest["executable_glibc"] == portable_layer.glibc
    assert manifest["portable"]["glibc_floor"] == FLOOR
    assert _version(manifest["portable"]["bundle_glibc"]) <= _version(FLOOR)
    assert manifest["version"] == message_adapter.__version__


# ---- running it on glibc 2.31 ------------------------------------------------------------


def test_full_cycle_through_s3_runs_in_a_glibc_2_31_root(
    old_root: OldRoot, moto: MotoServer, s3_bucket: tuple[Any, str]
) -> None:
    s3, bucket = s3_bucket
    message = {
        "cumulus_meta": {"system_bucket": bucket, "execution_name": "e1"},
        "meta": {"name": "MOD09GQ", "workflow_tasks": {}},
        "task_config": {"name": "{$.meta.name}", "granules": "{$.payload.granules}"},
        "ReplaceConfig": {"FullMessage": True},
        "payload": {"granules": [{"granuleId": f"g{n}"} for n in range(20)]},
    }
    s3.put_object(Bucket=bucket, Key="stored/message.json", Body=json.dumps(message).encode())
    remote = {
        "cumulus_meta": {"system_bucket": bucket},
        "replace": {"Bucket": bucket, "Key": "stored/message.json", "TargetPath": "$"},
    }
    context = {"function_name": "task", "function_version": "1"}
    env = {
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    first = old_root.run(
        ["/opt/cma_bin/cma", "stream"],
        frames(("loadAndUpdateRemoteEvent", {"event": remote, "context": context})),
        env,
    )
    assert first.returncode == 0, first.stderr.decode()
    [full] = answers(first.stdout)
    assert full["payload"] == message["payload"]

    handler_response = {"granules": [{"granuleId": "g0", "done": True}]}
    second = old_root.run(
        ["/opt/cma_bin/cma", "stream"],
        frames(
            ("loadNestedEvent", {"event": full, "context": context}),
            ("createNextEvent", {"event": full, "handler_response": handler_response}),
        ),
        env,
    )
    assert second.returncode == 0, second.stderr.decode()
    nested, next_message = answers(second.stdout)
    assert nested["config"]["name"] == "MOD09GQ"
    assert nested["input"] == message["payload"]
    offloaded = next_message["replace"]
    assert offloaded["Bucket"] == bucket
    stored = json.loads(s3.get_object(Bucket=bucket, Key=offloaded["Key"])["Body"].read())
    assert stored["payload"] == handler_response


def test_schema_check_loads_the_roots_own_libgcc_s(old_root: OldRoot) -> None:
    # jsonschema's rpds-py is Rust: it needs libgcc_s.so.1, which the layer must not ship.
    schema = {"type": "object", "properties": {"name": {"type": "integer"}}}
    (old_root.path / "task" / "schemas" / "config.json").write_text(json.dumps(schema))
    try:
        done = old_root.run(
            ["/opt/cma_bin/cma", "stream", "--structured-errors"],
            frames(("loadNestedEvent", NESTED_REQUEST)),
            {"LAMBDA_TASK_ROOT": "/task"},
        )
    finally:
        (old_root.path / "task" / "schemas" / "config.json").unlink()
    assert done.returncode == 0, done.stderr.decode()
    error = done.stdout.split(b"\n<EOC>\n")[0]
    assert error.startswith(b"<ERROR>\n"), done.stdout
    assert "config schema" in json.loads(error.split(b"\n", 1)[1])["message"]


def test_negative_control_a_binary_built_for_a_newer_glibc_fails_in_the_root(
    old_root: OldRoot,
) -> None:
    # Without this, a root that silently used the host's libraries would prove nothing.
    control = old_root.path / "tmp" / "control"
    control.mkdir(exist_ok=True)
    shutil.copy2(Path(shutil.which("true") or "/bin/true").resolve(), control / "host-true")
    needed = bundle.required_glibc(control)
    if needed is None or _version(needed) <= _version(OLD_GLIBC):
        pytest.skip(f"this host's binaries need glibc {needed}: too old for the control")
    done = old_root.run(["/tmp/control/host-true"])
    assert done.returncode != 0
    assert b"GLIBC_" in done.stderr and b"not found" in done.stderr, done.stderr


# ---- clients against the unpacked layer --------------------------------------------------


def _published_node_client() -> Path:
    published = NODE_CLIENT / "node_modules" / "@cumulus" / "cumulus-message-adapter-js"
    if not published.is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_CLIENT,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return published


PUBLISHED_CLIENT_TASK = """
const cma = require(process.argv[1]);
const event = {
  cumulus_meta: { execution_name: 'e1', message_source: 'sfn', state_machine: 'arn:sm' },
  meta: { name: 'X', workflow_tasks: {} },
  task_config: { name: '{$.meta.name}' },
  payload: { granules: [{ granuleId: 'g1' }] },
};
const context = { functionName: 'task', functionVersion: '1', invokedFunctionArn: 'arn:fn' };
cma.runCumulusTask((nested) => ({ got: nested.config.name, n: nested.input.granules.length }),
                   event, context)
  .then((out) => console.log(JSON.stringify(out)),
        (err) => { console.error(err); process.exit(1); });
"""


def test_published_node_client_runs_the_layer_executable_without_python(
    portable_layer: BundleReport, old_root: OldRoot, tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("this test needs Node.js on PATH")
    published = _published_node_client()
    path_dir = tmp_path / "bin"
    path_dir.mkdir()
    (path_dir / "node").symlink_to(node)
    env = {
        "PATH": str(path_dir),
        "CUMULUS_MESSAGE_ADAPTER_DIR": str(old_root.path / "opt"),
        "USE_CMA_BINARY": "true",
    }
    assert shutil.which("python", path=env["PATH"]) is None
    done = subprocess.run(
        [node, "-e", PUBLISHED_CLIENT_TASK, str(published)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])  # the published client logs before it
    assert out["payload"] == {"got": "X", "n": 1}
    assert out["meta"]["workflow_tasks"]["0"]["name"] == "task"


# ---- the release -------------------------------------------------------------------------


def test_release_artifacts_all_carry_one_version_and_the_license(
    portable_layer: BundleReport, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "release.py"),
            "--dist",
            str(dist),
            "--layer",
            str(portable_layer.zip_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    names = sorted(path.name for path in dist.iterdir())
    version = message_adapter.__version__
    assert names == sorted(
        [
            "cumulus-message-adapter.zip",
            f"cumulus_message_adapter-{version}-py3-none-any.whl",
            f"cumulus_message_adapter-{version}.tar.gz",
            f"cumulus_message_adapter_python-{version}-py3-none-any.whl",
            f"cumulus_message_adapter_python-{version}.tar.gz",
            f"cumulus-message-adapter-client-{version}.tgz",
        ]
    )
    with zipfile.ZipFile(dist / "cumulus-message-adapter.zip") as layer:
        assert json.loads(layer.read(bundle.MANIFEST))["version"] == version
        assert layer.read("LICENSE") == (REPO / "LICENSE").read_bytes()
    for wheel in dist.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            [metadata] = [n for n in archive.namelist() if n.endswith("METADATA")]
            assert f"\nVersion: {version}\n" in archive.read(metadata).decode()
            [license_file] = [n for n in archive.namelist() if n.endswith("/licenses/LICENSE")]
            assert archive.read(license_file) == (REPO / "LICENSE").read_bytes()
            assert any(n.endswith("/py.typed") for n in archive.namelist()), wheel.name
