"""Benchmark the stream sidecar against the protocol floor and print a markdown table.

Usage: ``.venv/bin/python bench/run.py [--quick] [--output FILE] [--sidecar "CMD ..."]``.
The full run takes about two minutes on two cores; ``--quick`` is a smoke run of a few
seconds. Every number is a median; the ratio is ours / floor.
"""

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import driver
from messages import LAMBDA_CONTEXT, make_message

BENCH = Path(__file__).resolve().parent
SIZES = (1, 2000, 20000)
RSS_LIMIT = 200 * 1024 * 1024


@dataclass(frozen=True)
class Mode:
    """How long each measurement may take."""

    budget: float
    min_cycles: int
    max_cycles: int
    spawns: int


FULL = Mode(budget=20.0, min_cycles=7, max_cycles=2000, spawns=9)
QUICK = Mode(budget=0.3, min_cycles=3, max_cycles=50, spawns=1)


@dataclass
class Row:
    """One line of the results table."""

    metric: str
    ours: float
    floor: float
    unit: str
    target: str = "—"
    ratio_limit: float | None = None
    absolute_limit: float | None = None
    samples: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.floor if self.floor else float("inf")

    @property
    def met(self) -> str:
        if self.ratio_limit is not None:
            return "yes" if self.ratio <= self.ratio_limit else "**NO**"
        if self.absolute_limit is not None:
            return "yes" if self.ours <= self.absolute_limit else "**NO**"
        return ""


def _size_text(size: int) -> str:
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _granules(count: int) -> str:
    return f"{count} granule" if count == 1 else f"{count} granules"


def _quantity(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value * 1000:.3g} ms" if value < 0.1 else f"{value * 1000:.0f} ms"
    return f"{value / 2**20:.1f} MB"


def measure(
    ours: list[str], floor: list[str], sizes: list[int], mode: Mode, log=print
) -> list[Row]:
    """Run every measurement and return the table rows."""
    sidecars = {"ours": ours, "floor": floor}
    rows: list[Row] = []
    rss_rows: list[Row] = []
    for granules in sizes:
        message = make_message(granules)
        size = len(driver.encode(message))
        log(f"warm cycles, {_granules(granules)} ({_size_text(size)}) ...")
        results = driver.warm_cycles(
            sidecars, message, LAMBDA_CONTEXT, mode.budget, mode.min_cycles, mode.max_cycles
        )
        limit = 2.0 if granules <= 1 else 1.25
        rows.append(
            Row(
                f"warm cycle, {_granules(granules)} ({_size_text(size)})",
                results["ours"].median,
                results["floor"].median,
                "ms",
                target=f"≤ {limit:g}x floor",
                ratio_limit=limit,
                samples=str(len(results["ours"].cycles)),
            )
        )
        at_limit = granules == 20000
        rss_rows.append(
            Row(
                f"peak RSS, {_granules(granules)}",
                results["ours"].peak_rss,
                results["floor"].peak_rss,
                "MB",
                target="≤ 200 MB" if at_limit else "—",
                absolute_limit=RSS_LIMIT if at_limit else None,
            )
        )
    log("spawn to first answer ...")
    first = driver.spawn_to_first_answer(sidecars, make_message(1), LAMBDA_CONTEXT, mode.spawns)
    rows.append(
        Row(
            "spawn to first answer (1 granule)",
            first["ours"],
            first["floor"],
            "ms",
            target="≤ 1.5x floor",
            ratio_limit=1.5,
            samples=str(mode.spawns),
        )
    )
    log("spawn to first full cycle, beside the orjson floor ...")
    cold = driver.spawn_to_first_cycle(
        {**sidecars, "orjson": [*floor, "orjson"]}, make_message(1), LAMBDA_CONTEXT, mode.spawns
    )
    rows.append(
        Row(
            "spawn to first full cycle (1 granule), against the orjson floor",
            cold["ours"],
            cold["orjson"],
            "ms",
            target="≤ 1.3x orjson floor",
            ratio_limit=1.3,
            samples=str(mode.spawns),
        )
    )
    rows.append(
        Row(
            "spawn to first full cycle (1 granule), against the msgspec floor",
            cold["ours"],
            cold["floor"],
            "ms",
            samples=str(mode.spawns),
        )
    )
    log("start to exit ...")
    bare = driver.start_to_exit(sidecars, mode.spawns)
    rows.append(
        Row(
            "cold start to exit (no requests)",
            bare["ours"],
            bare["floor"],
            "ms",
            samples=str(mode.spawns),
        )
    )
    rows.extend(rss_rows)
    return rows


def pin(choice: str) -> int | None:
    """Pin this process (and so every sidecar it spawns) to one CPU; return it.

    On a shared or virtual machine, a round trip between two processes on different CPUs
    pays for waking an idle CPU (about 50 us per wake-up here, four times the floor's
    whole 1-granule cycle), and which CPUs the scheduler picks changes from run to run.
    On one CPU a round trip is two context switches, so small-message timings measure
    the sidecars rather than the scheduler.
    """
    if choice == "none" or not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0)) if choice == "auto" else int(choice)
    os.sched_setaffinity(0, {cpu})
    return cpu


def _code_version() -> str:
    """The commit measured, marked when the working tree differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(BENCH.parent), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    return commit + (
        " + uncommitted changes" if git("status", "--porcelain", "--", "message_adapter") else ""
    )


def _environment_notes() -> list[str]:
    """Settings inherited by the sidecars that change what is measured."""
    notes = [f"- code: {_code_version()}"]
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        notes.append(
            "- PYTHONDONTWRITEBYTECODE is set: Python sidecars without cached bytecode "
            "compile their modules on every start"
        )
    if os.environ.get("PYTHONUNBUFFERED"):
        notes.append(
            "- PYTHONUNBUFFERED is set: sys.stdout.buffer is unbuffered, each write() "
            "is a system call"
        )
    return notes


def render(
    rows: list[Row], ours: list[str], floor: list[str], mode_name: str, cpu: int | None
) -> str:
    """The results as a markdown document."""
    lines = [
        "# Stream sidecar benchmark",
        "",
        f"- ours: `{driver.describe_argv(ours)}`",
        f"- floor: `{driver.describe_argv(floor)}`",
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {mode_name} mode, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, "
        + ("not pinned" if cpu is None else f"driver and sidecars pinned to CPU {cpu}")
        + f", load average {os.getloadavg()[0]:.1f} at the end",
        *_environment_notes(),
        "",
        *table(rows),
    ]
    return "\n".join(lines) + "\n"


def table(rows: list[Row]) -> list[str]:
    """The rows as a markdown table, followed by what the metrics mean."""
    lines = [
        "| metric | ours | floor | ratio | target | met | n |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.metric} | {_quantity(row.ours, row.unit)} | "
            f"{_quantity(row.floor, row.unit)} | {row.ratio:.2f}x | {row.target} | "
            f"{row.met} | {row.samples} |"
        )
    return [
        *lines,
        "",
        "Warm cycle: loadAndUpdateRemoteEvent → loadNestedEvent → createNextEvent on one "
        "warm process, the task's response being the nested input; only the three "
        "round trips are timed; median of n cycles, sidecars interleaved.",
        "Peak RSS: VmHWM of the sidecar just before `<EXIT>`, one fresh process per size.",
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    parser.add_argument(
        "--sidecar", help="command line to measure instead of `python -m message_adapter stream`"
    )
    parser.add_argument(
        "--cpu",
        default="auto",
        help="CPU to pin the driver and sidecars to ('auto': the last allowed one; "
        "'none': no pinning)",
    )
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="comma-separated granule counts (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    ours = (
        shlex.split(args.sidecar)
        if args.sidecar
        else [sys.executable, "-m", "message_adapter", "stream"]
    )
    floor = [sys.executable, str(BENCH / "floor.py")]
    sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
    mode = QUICK if args.quick else FULL

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    pinned = pin(args.cpu)

    started = time.perf_counter()
    try:
        rows = measure(ours, floor, sizes, mode, log)
    except driver.ProtocolFailure as error:
        log(f"benchmark failed: {error}")
        return 1
    log(f"done in {time.perf_counter() - started:.0f} s")
    report = render(rows, ours, floor, "quick" if args.quick else "full", pinned)
    sys.stdout.write(report)
    if args.output:
        args.output.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
