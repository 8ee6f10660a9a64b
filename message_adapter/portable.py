"""A bundle whose ``cma_bin/cma`` starts on Lambda: CPython built on an old glibc.

``build_portable_bundle(OUT)`` writes the same directory as ``bundle.build_bundle`` but
with a ``cma_bin/`` that needs no glibc symbol newer than ``GLIBC_FLOOR`` (2.26: Amazon
Linux 2 and 2023 both start it):

- a Debian bullseye root (glibc 2.31, gcc 10) made with ``debootstrap``, itself unpacked
  from its ``.deb``, so nothing is installed on the building machine;
- CPython built in that root from Debian bookworm's source package (upstream tarball plus
  Debian's fixes and security backports), with the symbols glibc re-versioned after 2.26
  bound to their old versions;
- ``cma_bin/`` holds that interpreter (``bin/python3.11``, ``lib/libpython3.11.so.1.0``,
  a trimmed standard library compiled to unchecked-hash bytecode, the shared libraries its
  modules need, all found through ``$ORIGIN`` run paths) and ``cma``, a small C launcher
  that runs ``bin/python3.11 -I -S <bundle> ARGS``: the same start as ``python DIR stream``.

Every slow step is cached under ``cache_dir()`` with a stamp file naming its inputs, so a
second build takes seconds. Building needs root (debootstrap, chroot), x86_64, apt-get and
dpkg-deb, Debian's archive keyring, and Debian's archive and PyPI on the network.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from message_adapter import bundle
from message_adapter.bundle import MANIFEST, BundleError, BundleReport, BundleTooLarge

GLIBC_FLOOR = "2.26"
SUITE = "bullseye"
PYTHON_VERSION = "3.11.2"
PYTHON_SOURCE = "python3.11"
PYTHON_SOURCE_VERSION = "3.11.2-6+deb12u8"  # bookworm's, from the main archive
PREFIX = "/opt/cma-python"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
ROOT_PACKAGES = (
    "build-essential,pkg-config,patchelf,libffi-dev,zlib1g-dev,libbz2-dev,liblzma-dev,"
    "libssl-dev,uuid-dev,ca-certificates"
)
# bullseye's runtime libraries a minimal old-glibc test root needs (see test_root_debs).
TEST_ROOT_PACKAGES = ("libc6", "libgcc-s1", "libstdc++6", "zlib1g")
# glibc's own libraries: every Linux has them, of the right version, so they never ship.
GLIBC_LIBRARIES = {
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "ld-linux-x86-64.so.2",
}
# Standard library parts a message adapter never imports (tests, GUIs, build tools).
STDLIB_DROPPED = (
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "turtle.py",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "distutils",
    "site-packages",
    "config-3.11-x86_64-linux-gnu",
)
# Extension modules for tests, or needing libraries Lambda may lack (libcrypt, libnsl).
DYNLOAD_DROPPED_PREFIXES = ("_test", "_ctypes_test", "xxlimited", "_xxtestfuzz", "_crypt.", "nis.")

GLIBC_COMPAT_H = """\
/* Bind to the x86_64 base versions of the symbols glibc 2.27-2.29 re-versioned, so the
   interpreter starts on glibc 2.26 (Amazon Linux 2). */
#if defined(__x86_64__) && !defined(__ASSEMBLER__)
__asm__(".symver fcntl64,fcntl@GLIBC_2.2.5");
__asm__(".symver exp,exp@GLIBC_2.2.5");
__asm__(".symver log,log@GLIBC_2.2.5");
__asm__(".symver pow,pow@GLIBC_2.2.5");
__asm__(".symver exp2,exp2@GLIBC_2.2.5");
__asm__(".symver log2,log2@GLIBC_2.2.5");
#endif
"""

BUILD_PYTHON_SH = f"""\
#!/bin/sh
set -e
cd /build && rm -rf Python-{PYTHON_VERSION} debian
tar -xzf {PYTHON_SOURCE}_{PYTHON_VERSION}.orig.tar.gz
tar -xJf {PYTHON_SOURCE}_{PYTHON_SOURCE_VERSION}.debian.tar.xz
cd Python-{PYTHON_VERSION}
# Debian's series lists its packaging patches first, then upstream fixes and security
# backports from shutdown-deadlock.diff on: apply only the latter.
grep -v '^#' ../debian/patches/series | sed -n '/^shutdown-deadlock.diff$/,$p' |
  while read -r p; do [ -n "$p" ] && patch -p1 --forward --quiet < "../debian/patches/$p"; done
# One backport includes an internal header: pyexpat must build as a core module.
sed -i '1i #ifndef Py_BUILD_CORE_BUILTIN\\n#  define Py_BUILD_CORE_MODULE 1\\n#endif' \\
  Modules/pyexpat.c
export CFLAGS_NODIST="-include /build/glibc-compat.h"
# Functions newer than glibc 2.26: Python falls back to what older systems have.
export ac_cv_func_copy_file_range=no ac_cv_func_memfd_create=no ac_cv_func_sem_clockwait=no
./configure --prefix={PREFIX} --enable-shared LDFLAGS=-Wl,-rpath,{PREFIX}/lib \\
  --without-ensurepip > /build/logs/configure.log 2>&1
make -j"$(nproc)" > /build/logs/make.log 2>&1
rm -rf {PREFIX}
make install > /build/logs/install.log 2>&1
{PREFIX}/bin/python3.11 -c 'import ssl, ctypes, lzma, bz2, zlib, pyexpat, uuid, math, fcntl'
cd /build && rm -rf Python-{PYTHON_VERSION} debian
"""

LAUNCHER_C = r"""/* cma: run the bundled adapter with the interpreter next to this file.
   Runs <dir>/bin/python3.11 -I -S <parent of dir> ARGS..., where <dir> holds this file
   (found through /proc/self/exe, so symbolic links to it work). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char dir[PATH_MAX], python[PATH_MAX + 32], bundle[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) {
        fprintf(stderr, "cma: cannot find itself through /proc/self/exe (%s); "
                        "is /proc mounted?\n", strerror(errno));
        return 127;
    }
    dir[n] = '\0';
    *strrchr(dir, '/') = '\0';
    snprintf(python, sizeof python, "%s/bin/python3.11", dir);
    strcpy(bundle, dir);
    char *slash = strrchr(bundle, '/');
    if (slash == bundle) slash[1] = '\0'; else if (slash) *slash = '\0';
    char **args = calloc((size_t)argc + 4, sizeof *args);
    if (!args) { perror("cma"); return 127; }
    args[0] = python; args[1] = "-I"; args[2] = "-S"; args[3] = bundle;
    for (int i = 1; i < argc; i++) args[i + 3] = argv[i];
    execv(python, args);
    fprintf(stderr, "cma: cannot run %s: %s\n", python, strerror(errno));
    return 127;
}
"""

ASSEMBLE_SH = f"""\
#!/bin/sh
# Turn the installed interpreter into a relocatable cma_bin/ in /build/runtime.
set -e
R=/build/runtime/cma_bin
rm -rf /build/runtime && mkdir -p $R/bin $R/lib $R/licenses
cp {PREFIX}/bin/python3.11 $R/bin/
cp {PREFIX}/lib/libpython3.11.so.1.0 $R/lib/
cp -a {PREFIX}/lib/python3.11 $R/lib/
cd $R/lib/python3.11
rm -rf {" ".join(STDLIB_DROPPED)}
for p in {" ".join(DYNLOAD_DROPPED_PREFIXES)}; do rm -f lib-dynload/"$p"*; done
find . -name __pycache__ -prune -exec rm -rf {{}} +
cd /build
gcc -O2 -Wall -Werror -include /build/glibc-compat.h -o $R/cma /build/launcher.c
patchelf --set-rpath '$ORIGIN/../lib' $R/bin/python3.11
for f in $R/lib/python3.11/lib-dynload/*.so; do patchelf --set-rpath '$ORIGIN/../..' "$f"; done
# The shared libraries the interpreter's modules need, except glibc's own (the system's).
need() {{ readelf -d "$@" | sed -n 's/.*(NEEDED).*\\[\\(.*\\)\\]/\\1/p' | sort -u; }}
for round in 1 2 3; do
  for lib in $(need $R/lib/*.so* $R/lib/python3.11/lib-dynload/*.so); do
    case " {" ".join(sorted(GLIBC_LIBRARIES))} libpython3.11.so.1.0 " in *" $lib "*) continue;; esac
    [ -e $R/lib/$lib ] && continue
    path=$(ldconfig -p | sed -n "s|.*(libc6,x86-64) => \\(.*/$lib\\)$|\\1|p" | head -1)
    [ -n "$path" ] || {{ echo "no $lib in the build root" >&2; exit 1; }}
    cp -L "$path" $R/lib/$lib
    pkg=$(dpkg -S "$(basename "$(readlink -f "$path")")" 2>/dev/null | head -1 | cut -d: -f1)
    if [ -n "$pkg" ]; then cp /usr/share/doc/"$pkg"/copyright $R/licenses/"$pkg".copyright; fi
  done
done
for f in $R/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$f"; done
strip --strip-all $R/cma $R/bin/python3.11
strip --strip-unneeded $R/lib/*.so* $R/lib/python3.11/lib-dynload/*.so
cp $R/lib/python3.11/LICENSE.txt $R/licenses/python.LICENSE.txt
{PREFIX}/bin/python3.11 -I -c '
import compileall, py_compile, sys
compileall.compile_dir(sys.argv[1], quiet=2, force=True,
                            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
' $R/lib/python3.11
"""

Log = Callable[[str], None]


def cache_dir() -> Path:
    """Where the portable build keeps what it downloads and builds (``CMA_CACHE`` wins)."""
    if os.environ.get("CMA_CACHE"):
        return Path(os.environ["CMA_CACHE"]).absolute()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cumulus-message-adapter"


def mirror() -> str:
    """The Debian mirror (``CMA_DEBIAN_MIRROR`` wins over deb.debian.org)."""
    return os.environ.get("CMA_DEBIAN_MIRROR", DEFAULT_MIRROR).rstrip("/")


def check_host() -> None:
    """Fail early, saying why, where the portable build cannot run."""
    problems = []
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        problems.append(
            f"it builds on x86_64 Linux only (this is {platform.system()} {platform.machine()})"
        )
    if os.geteuid() != 0:
        problems.append("it needs root: debootstrap and chroot (run it with sudo)")
    if sys.version_info[:2] != (3, 11):
        problems.append(
            "it runs the vendored packages (msgspec, rpds-py: built for this interpreter) on "
            f"CPython 3.11, but this is Python {sys.version_info[0]}.{sys.version_info[1]}; "
            "run it from a Python 3.11 environment"
        )
    for tool in ("apt-get", "dpkg-deb", "chroot", "unshare"):
        if shutil.which(tool) is None:
            problems.append(f"it needs {tool} (a Debian or Ubuntu machine)")
    if not Path(KEYRING).is_file():
        problems.append(f"it needs Debian's archive keyring at {KEYRING} (debian-archive-keyring)")
    if problems:
        raise BundleError("cannot build the portable bundle here: " + "; ".join(problems))


class Steps:
    """Cached build steps: each runs once per input key, records its time, logs one line."""

    def __init__(self, cache: Path, log: Log) -> None:
        self.cache = cache
        self.log = log
        self.logs = cache / "logs"
        self.stamps = cache / "stamps"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.stamps.mkdir(parents=True, exist_ok=True)

    def stamp(self, name: str, key: str) -> Path:
        return self.stamps / f"{name}.{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    def run(self, name: str, key: str, title: str, action: Callable[[], None]) -> None:
        """Run ``action`` unless its stamp for ``key`` exists; then write the stamp."""
        stamp = self.stamp(name, key)
        if stamp.exists():
            self.log(f"  {title}: cached")
            return
        for old in self.stamps.glob(f"{name}.*"):
            old.unlink()
        self.log(f"  {title} ...")
        started = time.monotonic()
        action()
        elapsed = time.monotonic() - started
        stamp.write_text(f"{key}\n")
        with open(self.logs / "timings.txt", "a") as timings:
            stamp_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            timings.write(f"{stamp_time} {name} {elapsed:.1f}s\n")
        self.log(f"  {title}: done in {elapsed:.1f} s")

    def command(self, name: str, argv: list[str], **kwargs: Any) -> None:
        """Run ``argv`` with its output in ``logs/<name>.log``; fail with the log's end."""
        log_path = self.logs / f"{name}.log"
        with open(log_path, "w") as log_file:
            done = subprocess.run(
                argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs
            )
        if done.returncode != 0:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise BundleError(
                f"{name} failed (exit {done.returncode}); the whole log is {log_path}:\n{tail}"
            )


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One portable build at a time per cache (two would share the build root)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class BuildRoot:
    """The Debian bullseye root under the cache, and how to run commands in it."""

    def __init__(self, cache: Path, steps: Steps) -> None:
        self.cache = cache
        self.steps = steps
        self.path = cache / f"{SUITE}-root"
        self.debootstrap = cache / "tools" / "debootstrap"
        self.debs = cache / "debs"

    def run(self, name: str, *argv: str) -> None:
        """Run ``argv`` in the root, with a clean environment; output to the step's log."""
        self.steps.command(
            name,
            [
                "chroot",
                str(self.path),
                "/usr/bin/env",
                "-i",
                "PATH=/usr/bin:/bin:/usr/sbin:/sbin",
                "HOME=/root",
                "LC_ALL=C",
                *argv,
            ],
        )

    def ensure(self) -> None:
        self.steps.run("debootstrap-tool", SUITE, "fetch debootstrap", self._fetch_debootstrap)
        key = f"{SUITE} {ROOT_PACKAGES} {mirror()}"
        self.steps.run("root", key, f"debootstrap {SUITE} (about a minute)", self._make)

    def _fetch_debootstrap(self) -> None:
        tools = self.debootstrap.parent
        tools.mkdir(parents=True, exist_ok=True)
        for old in tools.glob("debootstrap_*.deb"):
            old.unlink()
        download = ["apt-get", "download", "-q", "debootstrap"]
        if subprocess.run(download, cwd=tools, capture_output=True).returncode != 0:
            self.steps.command("apt-update", ["apt-get", "update", "-q"])
            self.steps.command("debootstrap-download", download, cwd=tools)
        [deb] = tools.glob("debootstrap_*.deb")
        shutil.rmtree(self.debootstrap, ignore_errors=True)
        self.steps.command(
            "debootstrap-unpack", ["dpkg-deb", "-x", str(deb), str(self.debootstrap)]
        )
        deb.unlink()

    def _make(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        env = {
            **os.environ,
            "DEBOOTSTRAP_DIR": str(self.debootstrap / "usr" / "share" / "debootstrap"),
        }
        self.steps.command(
            "debootstrap",
            [
                str(self.debootstrap / "usr" / "sbin" / "debootstrap"),
                "--variant=minbase",
                f"--keyring={KEYRING}",
                f"--include={ROOT_PACKAGES}",
                SUITE,
                str(self.path),
                mirror(),
            ],
            env=env,
        )
        self.debs.mkdir(parents=True, exist_ok=True)
        archives = self.path / "var" / "cache" / "apt" / "archives"
        for package in TEST_ROOT_PACKAGES:
            for old in self.debs.glob(f"{package}_*.deb"):
                old.unlink()
            [deb] = archives.glob(f"{package}_*_amd64.deb")
            shutil.copy2(deb, self.debs)
        for deb in archives.glob("*.deb"):
            deb.unlink()


def _fetch_python_source(cache: Path, steps: Steps) -> Path:
    """Bookworm's python3.11 source package, through a private apt configuration."""
    source = cache / "src"

    def fetch() -> None:
        apt = cache / "apt"
        for sub in ("etc", "lists/partial", "cache"):
            (apt / sub).mkdir(parents=True, exist_ok=True)
        (apt / "etc" / "sources.list").write_text(
            f"deb-src [signed-by={KEYRING}] {mirror()} bookworm main\n"
        )
        options = [
            "-o",
            f"Dir::Etc::sourcelist={apt / 'etc' / 'sources.list'}",
            "-o",
            "Dir::Etc::sourceparts=-",
            "-o",
            f"Dir::State::Lists={apt / 'lists'}",
            "-o",
            f"Dir::Cache={apt / 'cache'}",
            "-o",
            "APT::Sandbox::User=root",
        ]
        steps.command("apt-source-update", ["apt-get", "-q", *options, "update"])
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir(parents=True)
        steps.command(
            "apt-source",
            [
                "apt-get",
                "-q",
                *options,
                "source",
                "--download-only",
                f"{PYTHON_SOURCE}={PYTHON_SOURCE_VERSION}",
            ],
            cwd=source,
        )

    steps.run("python-source", PYTHON_SOURCE_VERSION, f"fetch CPython {PYTHON_VERSION}", fetch)
    return source


def _build_python(root: BuildRoot, source: Path, steps: Steps) -> None:
    build = root.path / "build"

    def compile_python() -> None:
        (build / "logs").mkdir(parents=True, exist_ok=True)
        for name in (
            f"{PYTHON_SOURCE}_{PYTHON_VERSION}.orig.tar.gz",
            f"{PYTHON_SOURCE}_{PYTHON_SOURCE_VERSION}.debian.tar.xz",
        ):
            shutil.copy2(source / name, build / name)
        (build / "glibc-compat.h").write_text(GLIBC_COMPAT_H)
        script = build / "build-python.sh"
        script.write_text(BUILD_PYTHON_SH)
        script.chmod(0o755)
        try:
            root.run("python-build", "/build/build-python.sh")
        finally:
            for log in (build / "logs").glob("*.log"):
                shutil.copy2(log, steps.logs / f"python-{log.name}")

    # Rebuilding the root (a new stamp) rebuilds what was built in it.
    key = BUILD_PYTHON_SH + GLIBC_COMPAT_H + _stamp_of(steps, "root")
    title = f"build CPython {PYTHON_VERSION} in the root (2-3 minutes on 2 cores)"
    steps.run("python-build", key, title, compile_python)


def _assemble_runtime(root: BuildRoot, steps: Steps) -> Path:
    """The relocatable ``cma_bin/`` (launcher and interpreter), cached under the root."""
    build = root.path / "build"
    runtime = build / "runtime" / "cma_bin"

    def assemble() -> None:
        (build / "launcher.c").write_text(LAUNCHER_C)
        (build / "glibc-compat.h").write_text(GLIBC_COMPAT_H)
        script = build / "assemble.sh"
        script.write_text(ASSEMBLE_SH)
        script.chmod(0o755)
        root.run("runtime-assemble", "/build/assemble.sh")
        _check_runtime(runtime)

    key = ASSEMBLE_SH + LAUNCHER_C + _stamp_of(steps, "python-build")
    steps.run("runtime", key, "assemble cma_bin (interpreter, libraries, launcher)", assemble)
    return runtime


def _stamp_of(steps: Steps, name: str) -> str:
    stamps = sorted(steps.stamps.glob(f"{name}.*"))
    return stamps[0].name if stamps else ""


def _check_runtime(runtime: Path) -> None:
    """The assembled interpreter imports what the adapter needs, and its glibc floor holds."""
    probe = "import ssl, ctypes, lzma, bz2, zlib, pyexpat, uuid, hashlib, decimal, json, sys"
    done = subprocess.run(
        [str(runtime / "bin" / "python3.11"), "-I", "-S", "-c", probe],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BundleError(f"the assembled interpreter cannot import its modules:\n{done.stderr}")
    _check_floor(runtime, "cma_bin")


def _check_floor(path: Path, what: str) -> str:
    newest = bundle.required_glibc(path) or "0.0"
    if bundle._version(newest) > bundle._version(GLIBC_FLOOR):
        raise BundleError(
            f"{what} needs glibc {newest}, newer than the portable floor {GLIBC_FLOOR}; "
            "a vendored wheel or a bundled library was built for a newer system"
        )
    return newest


def ensure_runtime(log: Log = lambda text: None) -> Path:
    """Build (or reuse) the portable ``cma_bin/`` and return it."""
    check_host()
    cache = cache_dir()
    with _locked(cache):
        steps = Steps(cache, log)
        root = BuildRoot(cache, steps)
        root.ensure()
        source = _fetch_python_source(cache, steps)
        _build_python(root, source, steps)
        return _assemble_runtime(root, steps)


def test_root_debs() -> list[Path]:
    """bullseye's libc6, libgcc-s1, libstdc++6 and zlib1g, kept by the root's step."""
    debs = cache_dir() / "debs"
    found = [next(iter(sorted(debs.glob(f"{name}_*.deb"))), None) for name in TEST_ROOT_PACKAGES]
    missing = [name for name, deb in zip(TEST_ROOT_PACKAGES, found, strict=True) if deb is None]
    if missing:
        raise BundleError(
            f"no cached {', '.join(missing)} under {debs}; build a portable bundle first"
        )
    return [deb for deb in found if deb is not None]


def build_portable_bundle(
    out: str | os.PathLike,
    zip_path: str | os.PathLike | None = None,
    force: bool = False,
    log: Log = lambda text: None,
) -> BundleReport:
    """Write the bundle to ``out`` with the portable ``cma_bin/`` (and the layer zip)."""
    out = Path(out).absolute()
    zip_file = None if zip_path is None else Path(zip_path).absolute()
    if zip_file is not None and zip_file.is_relative_to(out):
        raise BundleError(f"--zip {zip_file} must be outside the bundle directory {out}")
    check_host()
    log(f"portable cma_bin/cma (glibc >= {GLIBC_FLOOR}), cached under {cache_dir()}")
    runtime = ensure_runtime(log)
    bundle.build_bundle(out, None, executable=False, force=force, log=log)
    started = time.monotonic()
    shutil.copytree(runtime, out / bundle.EXECUTABLE.parent, symlinks=False)
    (out / "LICENSE").write_text(license_text())
    executable_glibc = _check_floor(out / bundle.EXECUTABLE.parent, "cma_bin")
    bundle_glibc = _check_floor(out, "the bundle")
    _record(out, executable_glibc, bundle_glibc)
    unzipped = bundle.directory_size(out)
    with tempfile.TemporaryDirectory() as scratch:
        target = zip_file or Path(scratch) / "layer.zip"
        bundle.write_zip(out, target)
        zipped = target.stat().st_size
    log(f"  cma_bin and layer: done in {time.monotonic() - started:.1f} s")
    report = BundleReport(
        out, unzipped, zipped, zip_file, out / bundle.EXECUTABLE, executable_glibc
    )
    try:
        bundle.check_lambda_limits(unzipped, zipped)
    except BundleTooLarge as error:
        error.report = report
        raise
    return report


def license_text() -> str:
    """This project's LICENSE: from the checkout, or from the installed distribution."""
    checkout = Path(__file__).resolve().parent.parent / "LICENSE"
    if checkout.is_file():
        return checkout.read_text()
    import importlib.metadata

    for file in importlib.metadata.files(bundle.DISTRIBUTION) or []:
        if file.name == "LICENSE":
            return file.read_text()
    raise BundleError(f"no LICENSE found for {bundle.DISTRIBUTION}; reinstall the package")


def _record(out: Path, executable_glibc: str, bundle_glibc: str) -> None:
    """Add the executable and its glibc floor to ``cma-bundle.json``."""
    path = out / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(
        executable=str(bundle.EXECUTABLE),
        executable_glibc=executable_glibc,
        portable={
            "glibc_floor": GLIBC_FLOOR,
            "bundle_glibc": bundle_glibc,
            "python": PYTHON_VERSION,
            "python_source": f"Debian {PYTHON_SOURCE} {PYTHON_SOURCE_VERSION}",
            "built_in": f"Debian {SUITE}",
        },
    )
    path.write_text(json.dumps(manifest, indent=2) + "\n")
