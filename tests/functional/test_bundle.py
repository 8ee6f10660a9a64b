"""The bundle: one directory that serves every client, as a layer and without Python.

The end-to-end tests build one bundle per session (PyInstaller takes a while) and drive it
the three ways clients do: ``python OUT stream`` with a bare interpreter, ``OUT`` first on
``sys.path`` for in-process import, and ``OUT/cma_bin/cma stream`` with no Python on PATH.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from message_adapter import bundle
from message_adapter.bundle import (
    LAMBDA_UNZIPPED_LIMIT,
    LAMBDA_ZIPPED_LIMIT,
    MANIFEST,
    BundleReport,
    BundleTooLarge,
    build_bundle,
    check_lambda_limits,
    main_py,
    trim_botocore,
)
from message_adapter.cli.app import cli
from tests.helpers import Run, get_json, stream_input

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
KEPT = {"s3", "stepfunctions", "sts", "sso", "sso-oidc"}
NESTED = {
    "event": {
        "task_config": {"name": "{$.meta.name}"},
        "meta": {"name": "MOD09GQ"},
        "payload": {"granules": [{"granuleId": "g1"}]},
    }
}
NESTED_ANSWER = {"input": {"granules": [{"granuleId": "g1"}]}, "config": {"name": "MOD09GQ"}}


def _has_pyinstaller() -> bool:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> BundleReport:
    """One bundle (and its layer zip) for the whole session."""
    root = tmp_path_factory.mktemp("bundle")
    return build_bundle(root / "cma", root / "layer.zip", executable=_has_pyinstaller())


@pytest.fixture(scope="session")
def out(built: BundleReport) -> Path:
    return built.out


@pytest.fixture(scope="session")
def exe(built: BundleReport) -> Path:
    if built.executable is None:
        pytest.skip(
            "PyInstaller is not installed, so cma_bin/cma was not built (pip install pyinstaller)"
        )
    return built.executable


@pytest.fixture
def no_python_path(tmp_path: Path) -> str:
    """A PATH on which no Python can be found."""
    empty = tmp_path / "bin-without-python"
    empty.mkdir()
    path = str(empty)
    for name in ("python", "python3", "python3.11"):
        assert shutil.which(name, path=path) is None
    return path


def _aws_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key.startswith("AWS_")}


def _run(command: list[Any], stdin: bytes, env: dict[str, str], cwd: Path) -> Run:
    done = subprocess.run(
        [str(part) for part in command],
        input=stdin,
        capture_output=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def _runner(kind: str, out: Path, exe: Path | None, path: str) -> list[Any]:
    if kind == "python":
        # -I -S: no site-packages, no PYTHON* variables; only the stdlib and the bundle.
        return [PYTHON, "-I", "-S", out, "stream", "--structured-errors"]
    return [exe, "stream", "--structured-errors"]


# ---- the three ways clients use the bundle -----------------------------------------------


@pytest.mark.e2e
def test_bare_interpreter_runs_bundle_directory(out: Path, tmp_path: Path) -> None:
    done = _run(
        [PYTHON, "-I", "-S", out, "stream"],
        stream_input(("loadNestedEvent", NESTED)),
        _aws_env(),
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.answers() == [NESTED_ANSWER]


@pytest.mark.e2e
def test_bundle_first_on_sys_path_serves_published_library_api(out: Path, tmp_path: Path) -> None:
    script = (
        "import sys, json\n"
        f"sys.path.insert(0, {str(out)!r})\n"
        "from message_adapter.message_adapter import MessageAdapter\n"
        "import message_adapter, jsonschema, msgspec\n"
        "adapter = MessageAdapter(None)\n"
        f"event = {json.dumps(NESTED['event'])}\n"
        "full = adapter.load_and_update_remote_event(event, {})\n"
        "nested = adapter.load_nested_event(full)\n"
        "nxt = adapter.create_next_event({'done': 1}, full, nested.get('messageConfig'))\n"
        "print(json.dumps({'files': [m.__file__ for m in (message_adapter, jsonschema, msgspec)],"
        " 'config': nested['config'], 'payload': nxt['payload']}))\n"
    )
    done = subprocess.run(
        [PYTHON, "-I", "-S", "-c", script], capture_output=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert all(Path(file).is_relative_to(out) for file in result["files"])
    assert result["config"] == {"name": "MOD09GQ"}
    assert result["payload"] == {"done": 1}


@pytest.mark.e2e
def test_executable_streams_with_no_python_on_path(
    exe: Path, no_python_path: str, tmp_path: Path
) -> None:
    env = {"PATH": no_python_path, **_aws_env()}
    done = _run([exe, "stream"], stream_input(("loadNestedEvent", NESTED)), env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.answers() == [NESTED_ANSWER]


@pytest.mark.e2e
def test_executable_answers_structured_errors(
    exe: Path, no_python_path: str, tmp_path: Path
) -> None:
    env = {"PATH": no_python_path, **_aws_env()}
    stdin = stream_input(
        ("loadNestedEvent", {"event": {"task_config": []}}), ("loadNestedEvent", NESTED)
    )
    done = _run([exe, "stream", "--structured-errors"], stdin, env, tmp_path)
    assert done.returncode == 0, done.stderr
    error, answer = done.stdout.split(b"\n<EOC>\n")[:2]
    assert error.startswith(b"<ERROR>\n")
    assert json.loads(error.split(b"\n", 1)[1])["name"] == "MessageError"
    assert json.loads(answer) == NESTED_ANSWER


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["python", "executable"])
def test_bundle_offloads_to_s3_and_loads_back(
    kind: str,
    built: BundleReport,
    s3_env: dict[str, str],
    s3: Any,
    bucket: str,
    no_python_path: str,
    tmp_path: Path,
) -> None:
    if kind == "executable" and built.executable is None:
        pytest.skip("PyInstaller is not installed, so cma_bin/cma was not built")
    event = {
        "cumulus_meta": {"system_bucket": bucket},
        "ReplaceConfig": {"FullMessage": True},
        "meta": {"name": "MOD09GQ"},
    }
    payload = {"granules": [{"granuleId": f"g{n}"} for n in range(50)]}
    command = _runner(kind, built.out, built.executable, no_python_path)
    env = {"PATH": no_python_path, **_aws_env()}
    first = _run(
        command,
        stream_input(("createNextEvent", {"event": event, "handler_response": payload})),
        env,
        tmp_path,
    )
    assert first.returncode == 0, first.stderr
    [offloaded] = first.answers()
    replace = offloaded["replace"]
    assert replace["Bucket"] == bucket
    assert get_json(s3, bucket, replace["Key"])["payload"] == payload

    second = _run(
        command, stream_input(("loadAndUpdateRemoteEvent", {"event": offloaded})), env, tmp_path
    )
    assert second.returncode == 0, second.stderr
    assert second.answers()[0]["payload"] == payload


# ---- what the bundle holds ---------------------------------------------------------------


@pytest.mark.e2e
def test_vendored_botocore_keeps_only_needed_services(built: BundleReport) -> None:
    roots = [built.out]
    if built.executable is not None:
        roots.append(built.executable.parent / "_internal")
    for root in roots:
        services = {
            entry.name for entry in (root / "botocore" / "data").iterdir() if entry.is_dir()
        }
        assert services == KEPT, root


@pytest.mark.e2e
def test_bytecode_is_never_checked_against_source_times(out: Path) -> None:
    # Zip keeps times to 2 s: timestamp-checked bytecode would look stale in a layer.
    import importlib.util

    for source in (out / "message_adapter").glob("*.py"):
        cached = Path(importlib.util.cache_from_source(str(source)))
        assert int.from_bytes(cached.read_bytes()[4:8], "little") == 1, cached  # unchecked
    pycs = [path for path in out.rglob("*.pyc") if "cma_bin" not in path.parts]
    assert pycs
    assert all(int.from_bytes(path.read_bytes()[4:8], "little") == 1 for path in pycs)


@pytest.mark.e2e
def test_bundle_has_no_console_scripts_bound_to_the_build_machine(out: Path) -> None:
    assert not (out / "bin").exists()


@pytest.mark.e2e
def test_manifest_records_python_version_and_executable(built: BundleReport) -> None:
    manifest = json.loads((built.out / MANIFEST).read_text())
    assert manifest["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert manifest["executable"] == (None if built.executable is None else "cma_bin/cma")
    assert manifest["executable_glibc"] == built.glibc
    assert (built.glibc is None) == (built.executable is None)


@pytest.mark.e2e
def test_report_sizes_are_within_lambda_limits(built: BundleReport) -> None:
    assert 0 < built.zipped_bytes < LAMBDA_ZIPPED_LIMIT
    assert built.zipped_bytes < built.unzipped_bytes < LAMBDA_UNZIPPED_LIMIT
    assert built.zip_path is not None and built.zip_path.stat().st_size == built.zipped_bytes


@pytest.mark.e2e
def test_layer_zip_unpacks_to_a_working_executable(
    exe: Path, built: BundleReport, no_python_path: str, tmp_path: Path
) -> None:
    unpacked = tmp_path / "opt"
    with zipfile.ZipFile(built.zip_path) as archive:
        assert "__main__.py" in archive.namelist()
        assert "message_adapter/message_adapter.py" in archive.namelist()
    subprocess.run(["unzip", "-q", str(built.zip_path), "-d", str(unpacked)], check=True)
    env = {"PATH": no_python_path, **_aws_env()}
    done = _run(
        [unpacked / "cma_bin" / "cma", "stream"],
        stream_input(("loadNestedEvent", NESTED)),
        env,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.answers() == [NESTED_ANSWER]


# ---- fast checks of the building blocks --------------------------------------------------


def test_size_check_names_each_exceeded_limit() -> None:
    with pytest.raises(BundleTooLarge, match="unzipped size 300.0 MB exceeds.*zipped size 60.0"):
        check_lambda_limits(300 * MB, 60 * MB)


def test_size_check_accepts_sizes_at_the_limits() -> None:
    check_lambda_limits(LAMBDA_UNZIPPED_LIMIT, LAMBDA_ZIPPED_LIMIT)


def test_trim_keeps_listed_services_and_top_level_files(tmp_path: Path) -> None:
    data = tmp_path / "botocore" / "data"
    for service in ("s3", "ec2", "stepfunctions"):
        (data / service).mkdir(parents=True)
    (data / "endpoints.json").write_text("{}")
    removed = trim_botocore(tmp_path, ("s3", "stepfunctions"))
    assert removed == ["botocore/ec2"]
    assert sorted(entry.name for entry in data.iterdir()) == [
        "endpoints.json",
        "s3",
        "stepfunctions",
    ]


def test_bundle_refuses_a_non_empty_directory_without_force(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["bundle", str(tmp_path), "--no-exe"])
    assert result.exit_code == 1
    assert "--force" in result.output
    assert (tmp_path / "keep.txt").exists()


def test_bundle_force_never_deletes_a_directory_that_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["bundle", str(tmp_path), "--no-exe", "--force"])
    assert result.exit_code == 1
    assert "not an earlier bundle" in result.output
    assert (tmp_path / "keep.txt").exists()


def test_bundle_command_fails_clearly_when_over_lambda_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def too_large(*args: Any, **kwargs: Any) -> BundleReport:
        error = BundleTooLarge("zipped size 60.0 MB exceeds Lambda's 50.0 MB limit")
        error.report = BundleReport(tmp_path, 200 * MB, 60 * MB, None, None)
        raise error

    monkeypatch.setattr(bundle, "build_bundle", too_large)
    result = CliRunner().invoke(cli, ["bundle", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "too large for Lambda" in result.output
    assert "zipped:   60.0 MB of Lambda's 50.0 MB limit" in result.output


def test_required_glibc_is_the_newest_version_any_elf_file_asks_for(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.so").write_bytes(b"\x7fELF..GLIBC_2.17\0GLIBC_2.28\0")
    (tmp_path / "b").write_bytes(b"\x7fELF..GLIBC_2.3\0")
    (tmp_path / "notes.txt").write_bytes(b"GLIBC_2.99")
    assert bundle.required_glibc(tmp_path) == "2.28"


def test_report_warns_when_the_executable_needs_a_newer_glibc_than_lambda(tmp_path: Path) -> None:
    report = BundleReport(tmp_path, MB, MB, None, tmp_path / "cma", glibc="2.35")
    assert any("newer than Lambda's Amazon Linux 2023" in line for line in report.lines())
    old = BundleReport(tmp_path, MB, MB, None, tmp_path / "cma", glibc="2.26")
    assert not any("warning" in line for line in old.lines())


def test_zip_inside_the_bundle_is_refused_before_building(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["bundle", str(out), "--zip", str(out / "layer.zip")])
    assert result.exit_code == 1
    assert "must be outside the bundle directory" in result.output
    assert not out.exists()


def test_bundle_without_pyinstaller_fails_at_once_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "PyInstaller", None)  # as if it were not installed

    started = time.monotonic()
    result = CliRunner().invoke(cli, ["bundle", str(tmp_path / "cma")])

    assert time.monotonic() - started < 2  # nothing was vendored first
    assert result.exit_code == 1
    assert "PyInstaller is needed" in result.output and "--no-exe" in result.output
    assert list(tmp_path.iterdir()) == []


def test_failed_build_leaves_no_partial_directory_and_keeps_the_earlier_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = tmp_path / "cma"
    earlier.mkdir()
    (earlier / MANIFEST).write_text('{"python": "3.11"}')
    (earlier / "__main__.py").write_text("# the earlier bundle")
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip cannot get the dependencies

    result = CliRunner().invoke(cli, ["bundle", str(earlier), "--no-exe", "--force"])

    assert result.exit_code == 1
    assert "pip could not vendor the dependencies" in result.output
    assert [entry.name for entry in tmp_path.iterdir()] == ["cma"]
    assert (earlier / "__main__.py").read_text() == "# the earlier bundle"


def _bundle_main(tmp_path: Path, built_for: str) -> Path:
    """A directory holding only the bundle's ``__main__.py`` for Python ``built_for``."""
    directory = tmp_path / "bundle"
    directory.mkdir()
    (directory / "__main__.py").write_text(main_py(built_for))
    return directory


def _checkout_env() -> dict[str, str]:
    """The adapter importable from the checkout (standing in for the vendored packages)."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_bundle_directory_runs_with_the_python_it_was_built_for(tmp_path: Path) -> None:
    directory = _bundle_main(tmp_path, f"{sys.version_info.major}.{sys.version_info.minor}")

    done = _run(
        [PYTHON, directory, "stream"],
        stream_input(("loadNestedEvent", NESTED)),
        _checkout_env(),
        tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert done.answers() == [NESTED_ANSWER]


def test_bundle_directory_run_by_another_python_hands_over_to_its_executable(
    tmp_path: Path,
) -> None:
    directory = _bundle_main(tmp_path, "3.99")
    (directory / "cma_bin").mkdir()
    executable = directory / "cma_bin" / "cma"
    executable.write_text(
        f'#!/bin/sh\necho "cma_bin/cma $*" >&2\nexec {PYTHON} -m message_adapter "$@"\n'
    )
    executable.chmod(0o755)

    done = _run(
        [PYTHON, directory, "stream", "--structured-errors"],
        stream_input(("loadNestedEvent", NESTED)),
        _checkout_env(),
        tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert done.answers() == [NESTED_ANSWER]
    assert done.stderr == b"cma_bin/cma stream --structured-errors\n"


def test_bundle_directory_run_by_another_python_without_executable_says_what_to_do(
    tmp_path: Path,
) -> None:
    directory = _bundle_main(tmp_path, "3.99")

    done = _run(
        [PYTHON, directory, "stream"],
        stream_input(("loadNestedEvent", NESTED)),
        _checkout_env(),
        tmp_path,
    )

    assert (done.returncode, done.stdout) == (1, b"")
    message = done.stderr.decode()
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"was built for Python 3.99, but {PYTHON} is Python {here}" in message
    assert "Run it with a Python 3.99" in message and "without --no-exe" in message


# ---- the Python client through the bundle -------------------------------------------------


def _client() -> Any:
    sys.path.insert(0, str(REPO / "clients" / "python"))
    import run_cumulus_task

    return run_cumulus_task


@pytest.fixture
def client_with_dir(monkeypatch: pytest.MonkeyPatch) -> Any:
    client = _client()
    client.stop_adapter()
    monkeypatch.delenv("CUMULUS_MESSAGE_ADAPTER_MODE", raising=False)
    yield client
    client.stop_adapter()


@pytest.mark.e2e
def test_python_client_runs_the_bundle_with_its_own_interpreter(
    out: Path, client_with_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_DIR", str(out))
    result = client_with_dir.run_cumulus_task(
        lambda event, context: event["config"], NESTED["event"]
    )
    assert result["payload"] == {"name": "MOD09GQ"}
    from run_cumulus_task.sidecar import get_sidecar

    assert get_sidecar().command[1:4] == ["-I", "-S", str(out)]


@pytest.mark.e2e
def test_python_client_runs_the_bundle_executable_for_another_python(
    exe: Path, client_with_dir: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    layer = tmp_path / "layer"
    layer.mkdir()
    (layer / "cma_bin").symlink_to(exe.parent)
    (layer / MANIFEST).write_text(json.dumps({"python": "3.99", "executable": "cma_bin/cma"}))
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_DIR", str(layer))
    result = client_with_dir.run_cumulus_task(
        lambda event, context: event["config"], NESTED["event"]
    )
    assert result["payload"] == {"name": "MOD09GQ"}
    from run_cumulus_task.sidecar import get_sidecar

    assert get_sidecar().command[0] == str(layer / "cma_bin" / "cma")
