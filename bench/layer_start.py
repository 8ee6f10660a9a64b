"""Cold start of a bundle's ``cma_bin/cma`` beside ``python DIR stream`` on the same bundle.

Usage: ``.venv/bin/python bench/layer_start.py DIR [--spawns N] [--output FILE]`` where DIR
is a bundle (``cumulus-message-adapter bundle DIR [--portable]``). Both sidecars are timed
on the 1-granule message from spawn to the first ``loadAndUpdateRemoteEvent`` answer and
from spawn to the end of a first full cycle (``loadAndUpdateRemoteEvent``,
``loadNestedEvent``, ``createNextEvent``: what a Lambda's cold start pays), interleaved,
pinned to one CPU like bench/run.py; the target is cma ≤ 1.5x python DIR on the full
cycle.
"""

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import driver
from messages import LAMBDA_CONTEXT, make_message
from run import pin

TARGET = 1.5


CMA = "cma_bin/cma stream"
PYTHON = "python -I -S DIR stream"


def sidecars(bundle: Path) -> dict[str, Sequence[str]]:
    """The bundle's two command lines, by row label."""
    return {
        CMA: [str(bundle / "cma_bin" / "cma"), "stream"],
        PYTHON: [sys.executable, "-I", "-S", str(bundle), "stream"],
    }


def measure(bundle: Path, spawns: int) -> dict[str, dict[str, float]]:
    """Median seconds from spawn to the first answer (``first``) and to the end of a first
    full cycle (``cycle``) of each of the bundle's sidecars, on the 1-granule message."""
    argv = sidecars(bundle)
    message = make_message(1)
    return {
        "first": driver.spawn_to_first_answer(argv, message, LAMBDA_CONTEXT, spawns),
        "cycle": driver.spawn_to_first_cycle(argv, message, LAMBDA_CONTEXT, spawns),
    }


def table(timings: dict[str, dict[str, float]]) -> tuple[list[str], bool]:
    """The markdown table of ``measure``'s timings, and whether the target is met."""
    first, cycle = timings["first"], timings["cycle"]
    ratio = cycle[CMA] / cycle[PYTHON]
    met = ratio <= TARGET
    lines = [
        "| 1 granule, median | spawn to first answer | spawn to first full cycle |",
        "|---|---:|---:|",
        f"| `{CMA}` | {first[CMA] * 1000:.1f} ms | {cycle[CMA] * 1000:.1f} ms |",
        f"| `{PYTHON}` | {first[PYTHON] * 1000:.1f} ms | {cycle[PYTHON] * 1000:.1f} ms |",
        f"| ratio (target ≤ {TARGET}x on the full cycle) | {first[CMA] / first[PYTHON]:.2f}x "
        f"| {ratio:.2f}x " + ("met" if met else "NOT MET") + " |",
    ]
    return lines, met


def describe(bundle: Path) -> str:
    """One line naming the bundle, its version and what its executable needs."""
    manifest = json.loads((bundle / "cma-bundle.json").read_text())
    portable = manifest.get("portable") or {}
    return (
        f"bundle: `{bundle}` (version {manifest.get('version')}, cma_bin/cma needs glibc "
        f"{manifest.get('executable_glibc')}"
        + (f", portable CPython {portable['python']}" if portable else ", PyInstaller")
        + ")"
    )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns 0 when the target is met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="a bundle directory with cma_bin/cma")
    parser.add_argument("--spawns", type=int, default=21, help="spawns per sidecar (median)")
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    parser.add_argument("--cpu", default="auto", help="as bench/run.py --cpu")
    args = parser.parse_args(argv)
    out = args.bundle.absolute()
    exe = out / "cma_bin" / "cma"
    if not os.access(exe, os.X_OK):
        print(f"{exe} is missing: build the bundle with its executable first", file=sys.stderr)
        return 2
    cpu = pin(args.cpu)
    rows, met = table(measure(out, args.spawns))
    lines = [
        "# Layer executable cold start",
        "",
        f"- {describe(out)}",
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.spawns} spawns each, "
        f"interleaved, Python {platform.python_version()} for `python DIR`, "
        + ("not pinned" if cpu is None else f"pinned to CPU {cpu}")
        + f", load average {os.getloadavg()[0]:.1f}",
        "",
        *rows,
    ]
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    if args.output:
        args.output.write_text(report)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
