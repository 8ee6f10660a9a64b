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
from pathlib import Path

import driver
from messages import LAMBDA_CONTEXT, make_message
from run import pin

TARGET = 1.5


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
    manifest = json.loads((out / "cma-bundle.json").read_text())
    sidecars = {
        "cma_bin/cma stream": [str(exe), "stream"],
        "python -I -S DIR stream": [sys.executable, "-I", "-S", str(out), "stream"],
    }
    cpu = pin(args.cpu)
    first = driver.spawn_to_first_answer(sidecars, make_message(1), LAMBDA_CONTEXT, args.spawns)
    cycle = driver.spawn_to_first_cycle(sidecars, make_message(1), LAMBDA_CONTEXT, args.spawns)
    cma, python = first["cma_bin/cma stream"], first["python -I -S DIR stream"]
    cma_cycle, python_cycle = cycle["cma_bin/cma stream"], cycle["python -I -S DIR stream"]
    ratio = cma_cycle / python_cycle
    portable = manifest.get("portable") or {}
    lines = [
        "# Layer executable cold start",
        "",
        f"- bundle: `{out}` (version {manifest.get('version')}, cma_bin/cma needs glibc "
        f"{manifest.get('executable_glibc')}"
        + (f", portable CPython {portable['python']}" if portable else ", PyInstaller")
        + ")",
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.spawns} spawns each, "
        f"interleaved, Python {platform.python_version()} for `python DIR`, "
        + ("not pinned" if cpu is None else f"pinned to CPU {cpu}")
        + f", load average {os.getloadavg()[0]:.1f}",
        "",
        "| 1 granule, median | spawn to first answer | spawn to first full cycle |",
        "|---|---:|---:|",
        f"| `cma_bin/cma stream` | {cma * 1000:.1f} ms | {cma_cycle * 1000:.1f} ms |",
        f"| `python -I -S DIR stream` | {python * 1000:.1f} ms | {python_cycle * 1000:.1f} ms |",
        f"| ratio (target ≤ {TARGET}x on the full cycle) | {cma / python:.2f}x | {ratio:.2f}x "
        + ("met" if ratio <= TARGET else "NOT MET")
        + " |",
    ]
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    if args.output:
        args.output.write_text(report)
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
