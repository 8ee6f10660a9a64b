"""Build one self-contained adapter directory for every client and Lambda runtime.

``build_bundle(OUT)`` writes a folder that works as ``CUMULUS_MESSAGE_ADAPTER_DIR`` and as
the content of a Lambda layer, in the three ways clients use it:

- ``python OUT stream``: the top-level ``__main__.py`` puts OUT first on ``sys.path``;
  the package and its dependencies are vendored at OUT's top level (``pip --target``).
- ``OUT`` first on ``sys.path``: ``from message_adapter.message_adapter import
  MessageAdapter``, as the published Python client does in-process.
- ``OUT/cma_bin/cma stream``: a PyInstaller executable for machines without Python
  (Node Lambda runtimes have none). ``python OUT`` with another Python than the bundle's
  runs that executable instead (the vendored packages would not import).

botocore's service data is trimmed to the services the adapter uses. ``cma-bundle.json``
records how the bundle was built (clients read its Python version). The sizes are checked
against Lambda's layer limits and an oversized bundle is an error.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import importlib.util
import json
import os
import platform
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import message_adapter

DISTRIBUTION = "cumulus-message-adapter"
MANIFEST = "cma-bundle.json"
EXECUTABLE = Path("cma_bin") / "cma"
MB = 1024 * 1024
LAMBDA_ZIPPED_LIMIT = 50 * MB
LAMBDA_UNZIPPED_LIMIT = 250 * MB
# S3 holds offloaded message parts; stepfunctions is kept for tasks that share the layer;
# sts/sso/sso-oidc serve botocore's credential providers (assumed roles, SSO profiles).
# The oldest glibc of the Lambda runtimes without Python (Amazon Linux 2023).
LAMBDA_GLIBC = "2.34"
BOTOCORE_SERVICES = ("s3", "stepfunctions", "sts", "sso", "sso-oidc")

MAIN_PY = """\
\"\"\"`python <this directory> <command>`: run the bundled Cumulus Message Adapter.

The vendored packages only import in the Python they were built for; any other Python
hands over to the bundle's executable, or says what to change. (Old syntax on purpose:
even a Python 2 must get that far.)
\"\"\"

import os
import sys

BUILT_FOR = {built_for!r}
_here = os.path.dirname(os.path.abspath(__file__))
_running = "%d.%d" % tuple(sys.version_info[:2])
if _running != BUILT_FOR:
    _exe = os.path.join(_here, "cma_bin", "cma")
    if os.access(_exe, os.X_OK):
        os.execv(_exe, [_exe] + sys.argv[1:])
    sys.stderr.write(
        "cumulus-message-adapter: the bundle %s was built for Python %s, but %s is Python "
        "%s, and the bundle has no cma_bin/cma executable to run instead. Run it with a "
        "Python %s (the Node client starts the first `python` on PATH), or rebuild the "
        "bundle with its executable (without --no-exe), which needs no Python.\\n"
        % (_here, BUILT_FOR, sys.executable or "this interpreter", _running, BUILT_FOR)
    )
    sys.exit(1)
if not sys.path or os.path.abspath(sys.path[0]) != _here:
    sys.path.insert(0, _here)

from message_adapter.cli import main  # noqa: E402

main()
"""


def main_py(built_for: str | None = None) -> str:
    """The bundle's ``__main__.py`` for a bundle built with Python ``built_for`` (``3.11``)."""
    if built_for is None:
        built_for = f"{sys.version_info.major}.{sys.version_info.minor}"
    return MAIN_PY.format(built_for=built_for)


ENTRY_PY = """\
from message_adapter.cli import main

main()
"""

Log = Callable[[str], None]


class BundleError(Exception):
    """The bundle could not be built; the message says what to fix."""


class BundleTooLarge(BundleError):
    """The bundle exceeds a Lambda layer limit (``report`` has the sizes, when known)."""

    report: BundleReport | None = None


@dataclass
class BundleReport:
    """Where the bundle went and how big it is."""

    out: Path
    unzipped_bytes: int
    zipped_bytes: int
    zip_path: Path | None
    executable: Path | None
    glibc: str | None = None

    def lines(self) -> list[str]:
        """Human-readable summary, sizes against Lambda's limits."""
        notes = []
        if self.glibc and _version(self.glibc) > _version(LAMBDA_GLIBC):
            notes.append(
                f"  warning: cma_bin/cma needs glibc {self.glibc}, newer than Lambda's Amazon "
                f"Linux 2023 ({LAMBDA_GLIBC}); build the layer with --portable "
                "(see docs/bundle.md)"
            )
        return [
            f"bundle: {self.out}",
            f"  unzipped: {_mb(self.unzipped_bytes)} of Lambda's "
            f"{_mb(LAMBDA_UNZIPPED_LIMIT)} limit",
            f"  zipped:   {_mb(self.zipped_bytes)} of Lambda's "
            f"{_mb(LAMBDA_ZIPPED_LIMIT)} limit" + (f" ({self.zip_path})" if self.zip_path else ""),
            f"  executable: {self.executable or 'not built (--no-exe)'}"
            + (f" (needs glibc >= {self.glibc})" if self.glibc else ""),
            *notes,
        ]


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def build_bundle(
    out: str | os.PathLike,
    zip_path: str | os.PathLike | None = None,
    executable: bool = True,
    force: bool = False,
    log: Log = lambda text: None,
) -> BundleReport:
    """Write the bundle to ``out`` (and a Lambda layer zip to ``zip_path``).

    What the build needs is checked before anything is written. The bundle is built in a
    new directory beside ``out`` and moved into place only when complete, so a failed
    build leaves ``out`` as it was (an earlier bundle stays usable) and nothing half-written.
    """
    out = Path(out).absolute()
    zip_file = None if zip_path is None else Path(zip_path).absolute()
    if zip_file is not None and zip_file.is_relative_to(out):
        raise BundleError(f"--zip {zip_file} must be outside the bundle directory {out}")
    check_out(out, force)
    check_prerequisites(executable)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_sibling(out, "partial")
    try:
        report = _build_into(staging, out, zip_file, executable, log)
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        check_lambda_limits(report.unzipped_bytes, report.zipped_bytes)
    except BundleTooLarge as error:
        error.report = report
        raise
    return report


def _build_into(
    staging: Path, out: Path, zip_file: Path | None, executable: bool, log: Log
) -> BundleReport:
    log(f"vendoring {DISTRIBUTION} and its dependencies into {out}")
    vendor_dependencies(staging)
    copy_package(staging)
    (staging / "__main__.py").write_text(main_py())
    trim_botocore(staging)
    shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts bound to this machine
    compile_bytecode(staging, shown_as=out)
    exe = None
    if executable:
        log("building cma_bin/cma with PyInstaller (under a minute)")
        build_executable(staging)
        exe = out / EXECUTABLE
    glibc = required_glibc(staging / EXECUTABLE.parent) if exe is not None else None
    write_manifest(staging, exe is not None, glibc)
    unzipped = directory_size(staging)
    if zip_file is not None:
        write_zip(staging, zip_file)
        zipped = zip_file.stat().st_size
    else:
        with tempfile.TemporaryDirectory() as scratch:
            probe = Path(scratch) / "layer.zip"
            write_zip(staging, probe)
            zipped = probe.stat().st_size
    return BundleReport(out, unzipped, zipped, zip_file, exe, glibc)


def check_prerequisites(executable: bool) -> None:
    """Raise ``BundleError`` for anything the build needs and lacks, before it starts."""
    runtime_requirements()  # the package must be installed: its metadata lists what to vendor
    if importlib.util.find_spec("pip") is None:
        raise BundleError(
            f"pip is not available in this interpreter ({sys.executable}); it vendors the "
            "dependencies: `python -m ensurepip` or use a virtualenv made with pip"
        )
    if executable and importlib.util.find_spec("PyInstaller") is None:
        raise BundleError(
            "PyInstaller is needed to build cma_bin/cma for runtimes without Python: "
            "`pip install pyinstaller` (or the project's test extras), or pass --no-exe"
        )


def _new_sibling(out: Path, role: str) -> Path:
    """A new directory ``.<out name>.<role>-<random>`` beside ``out``, with the usual mode.

    (``tempfile.mkdtemp`` would make it private, and the bundle keeps its directory's mode.)
    """
    import secrets

    while True:
        candidate = out.with_name(f".{out.name}.{role}-{secrets.token_hex(4)}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate


def _move_into_place(staging: Path, out: Path) -> None:
    """Replace ``out`` (absent, empty, or an earlier bundle) by the finished ``staging``."""
    if not out.exists():
        staging.rename(out)
        return
    previous = _new_sibling(out, "previous")
    out.rename(previous / out.name)
    staging.rename(out)
    shutil.rmtree(previous, ignore_errors=True)


def compile_bytecode(out: Path, shown_as: Path | None = None) -> None:
    """Compile every module to hash-based bytecode that is never checked against its source.

    Zip archives keep times to 2 seconds, so timestamp-checked bytecode from a layer would
    often look stale, and Lambda (whose /opt is read-only) would recompile those modules at
    every cold start. A bundle is a build artifact: its sources do not change. (The
    top-level ``__main__.py`` is compiled too, though Python runs it from source.)
    Tracebacks name files under ``shown_as`` (where the bundle will live), else ``out``.
    """
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    skip = re.compile(re.escape(os.sep + EXECUTABLE.parent.name + os.sep))
    # A vendored file that does not compile (test data, templates) just stays source-only.
    compileall.compile_dir(
        out,
        quiet=2,
        force=True,
        rx=skip,
        invalidation_mode=mode,
        stripdir=str(out) if shown_as is not None else None,
        prependdir=str(shown_as) if shown_as is not None else None,
    )


def check_lambda_limits(
    unzipped_bytes: int,
    zipped_bytes: int,
    unzipped_limit: int = LAMBDA_UNZIPPED_LIMIT,
    zipped_limit: int = LAMBDA_ZIPPED_LIMIT,
) -> None:
    """Raise ``BundleTooLarge`` naming every Lambda limit the sizes exceed."""
    problems = []
    if unzipped_bytes > unzipped_limit:
        problems.append(
            f"unzipped size {_mb(unzipped_bytes)} exceeds Lambda's {_mb(unzipped_limit)} limit"
        )
    if zipped_bytes > zipped_limit:
        problems.append(
            f"zipped size {_mb(zipped_bytes)} exceeds Lambda's {_mb(zipped_limit)} limit "
            "for a directly uploaded zip"
        )
    if problems:
        raise BundleTooLarge(
            "; ".join(problems) + ". Build with --no-exe if the layer is only used by Python "
            "tasks, or trim more botocore services."
        )


def check_out(out: Path, force: bool) -> None:
    """Raise ``BundleError`` unless ``out`` may receive the bundle (nothing is changed)."""
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise BundleError(f"{out} is not empty; pass --force to replace an earlier bundle")
        if not (out / MANIFEST).is_file():
            raise BundleError(
                f"{out} is not empty and holds no {MANIFEST}, so it is not an earlier bundle; "
                "refusing to delete it, choose another directory"
            )


def runtime_requirements() -> list[str]:
    """The package's runtime requirements (no extras), as declared in its metadata."""
    try:
        requires = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise BundleError(
            f"{DISTRIBUTION} is not installed in this interpreter ({sys.executable}); "
            "run `pip install -e .` in the checkout first"
        ) from None
    return [req.split(";")[0].strip() for req in requires if "extra ==" not in req]


def _installed_constraints() -> str:
    """``name==version`` for every installed distribution: vendor what was tested here."""
    lines = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and _normalize(name) != _normalize(DISTRIBUTION) and dist.version:
            lines.add(f"{name}=={dist.version}")
    return "\n".join(sorted(lines)) + "\n"


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def vendor_dependencies(out: Path) -> None:
    """``pip install --target out`` the runtime requirements, pinned to installed versions."""
    with tempfile.TemporaryDirectory() as scratch:
        constraints = Path(scratch) / "constraints.txt"
        constraints.write_text(_installed_constraints())
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            str(out),
            "--constraint",
            str(constraints),
            *runtime_requirements(),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BundleError(
            "pip could not vendor the dependencies (is the package registry reachable?):\n"
            + (result.stderr or result.stdout).strip()
        )


def copy_package(out: Path) -> None:
    """Copy the ``message_adapter`` package (this code) to the bundle's top level."""
    source = Path(message_adapter.__file__).parent
    shutil.copytree(
        source, out / "message_adapter", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )


def trim_botocore(root: Path, services: tuple[str, ...] = BOTOCORE_SERVICES) -> list[str]:
    """Drop botocore and boto3 service data except ``services``; returns what was removed."""
    removed = []
    for data in (root / "botocore" / "data", root / "boto3" / "data"):
        if not data.is_dir():
            continue
        for entry in data.iterdir():
            if entry.is_dir() and entry.name not in services:
                shutil.rmtree(entry)
                removed.append(f"{data.parent.name}/{entry.name}")
    if not (root / "botocore" / "data" / "s3").is_dir():
        raise BundleError(f"botocore's s3 data is missing under {root}; the bundle cannot use S3")
    return removed


def build_executable(out: Path) -> Path:
    """Freeze the adapter with PyInstaller into ``out/cma_bin`` (``cma`` plus ``_internal``)."""
    check_prerequisites(executable=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        entry = work / "cma_entry.py"
        entry.write_text(ENTRY_PY)
        command = [
            sys.executable,
            "-m",
            "PyInstaller",
            str(entry),
            "--name",
            "cma",
            "--onedir",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(work / "dist"),
            "--workpath",
            str(work / "build"),
            "--specpath",
            str(work),
            "--paths",
            str(out),
            "--exclude-module",
            "tkinter",
        ]
        for name in _foreign_modules(out):
            command += ["--exclude-module", name]
        if shutil.which("strip"):
            command.append("--strip")
        # The vendored (trimmed) packages must win over this interpreter's own copies, for
        # the analysis and for the hooks that collect data files (botocore's models).
        env = {**os.environ, "PYTHONPATH": str(out), "PYTHONNOUSERSITE": "1"}
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work)
        if result.returncode != 0:
            raise BundleError("PyInstaller failed:\n" + (result.stderr or result.stdout)[-4000:])
        target = out / EXECUTABLE.parent
        shutil.move(str(work / "dist" / "cma"), str(target))
    trim_botocore(target / "_internal")
    exe = out / EXECUTABLE
    if not os.access(exe, os.X_OK):
        raise BundleError(f"PyInstaller did not produce an executable at {exe}")
    return exe


def _foreign_modules(out: Path) -> list[str]:
    """Top-level modules this interpreter's site-packages has and the bundle does not.

    PyInstaller would otherwise pull in whatever optional import happens to be installed
    here (cryptography for urllib3, PyYAML, the test tools...); the executable must hold
    exactly what was vendored.
    """
    import pkgutil
    import site

    vendored = {module.name for module in pkgutil.iter_modules([str(out)])}
    roots = [
        path
        for path in site.getsitepackages() + [site.getusersitepackages()]
        if os.path.isdir(path)
    ]
    found = {module.name for module in pkgutil.iter_modules(roots)}
    return sorted(found - vendored - set(sys.stdlib_module_names))


def required_glibc(root: Path) -> str | None:
    """The newest ``GLIBC_x.y`` symbol version any ELF file under ``root`` asks for."""
    newest = None
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as handle:
                if handle.read(4) != b"\x7fELF":
                    continue
                data = handle.read()
            for major, minor in re.findall(rb"GLIBC_(\d+)\.(\d+)", data):
                version = (int(major), int(minor))
                newest = max(newest or version, version)
    return None if newest is None else f"{newest[0]}.{newest[1]}"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def write_manifest(out: Path, has_executable: bool, glibc: str | None = None) -> None:
    """Record the version, the Python the vendored packages are built for, and the parts."""
    manifest = {
        "name": DISTRIBUTION,
        "version": message_adapter.__version__,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "implementation": sys.implementation.name,
        "platform": f"{sys.platform}-{platform.machine()}",
        "executable": str(EXECUTABLE) if has_executable else None,
        "executable_glibc": glibc,
        "botocore_services": list(BOTOCORE_SERVICES),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def directory_size(root: Path) -> int:
    """Total bytes of the regular files under ``root`` (what Lambda counts unzipped)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def write_zip(root: Path, zip_file: Path) -> None:
    """Zip ``root``'s content at the archive's top level, keeping the executable bits.

    Symbolic links are stored as the files they point to, so the layer unpacks anywhere.
    """
    zip_file.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_file.with_name(zip_file.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for folder, dirs, files in os.walk(root, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                if not path.exists():
                    continue
                info = zipfile.ZipInfo.from_file(path.resolve(), str(path.relative_to(root)))
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(path, "rb") as handle:
                    archive.writestr(info, handle.read(), compresslevel=6)
    partial.replace(zip_file)
