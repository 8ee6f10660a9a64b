"""Every benchmark in one run, written as one markdown report.

Usage: ``.venv/bin/python bench/all.py [--quick] [--sizes 1,2000,20000] [--bundle DIR]
[--historic DIR] [--output FILE] [--cpu auto|none|N]``.

Sections, each built from the single-purpose scripts beside this one:

- the sidecar against the msgspec and orjson floors (``run.py``);
- with ``--historic DIR``, the original NASA adapter as a third sidecar (warm cycle, spawn to
  first full cycle, peak RSS), over protocol v1, the only one it speaks;
- the Python (``python_client.py``) and Node (``node_client.js``) clients, cold and warm
  invocations over v1 and v2 (and over the historic adapter), beside the Python client's
  in-process figure and the ratio to it; the published Node client where it is installed;
- with ``--bundle DIR``, spawn to first full cycle of ``python -I -S DIR stream`` and
  ``DIR/cma_bin/cma stream`` (``layer_start.py``).

A measurement that fails (e.g. an adapter that crashes on the largest message) is reported
in its table instead of ending the run. Every child inherits this process's CPU pinning.
"""

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import driver
import layer_start
import python_client
import run
from messages import LAMBDA_CONTEXT, make_message

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SIZES = (1, 2000, 20000)
IN_PROCESS = "in-process"


@dataclass(frozen=True)
class Plan:
    """How long each part of the run may take."""

    sidecar: run.Mode
    client_spawns: int
    client_budget: float
    client_min_calls: int
    layer_spawns: int


FULL = Plan(run.FULL, client_spawns=5, client_budget=2.0, client_min_calls=5, layer_spawns=11)
QUICK = Plan(run.QUICK, client_spawns=1, client_budget=0.1, client_min_calls=3, layer_spawns=1)


@dataclass
class Invocation:
    """Cold and warm figures (milliseconds) of one client over one adapter on one size."""

    cold: float | None = None
    warm: float | None = None
    calls: int = 0
    published: float | None = None
    failure: str = ""


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g} ms" if value < 10 else f"{value:.1f} ms"


def _ratio(value: float | None, reference: float | None) -> str:
    return "—" if value is None or not reference else f"{value / reference:.2f}x"


def _failure(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"failed: {text[:160]}" if text else f"failed: {type(error).__name__}"


def sidecar_section(
    ours: list[str], floor: list[str], sizes: list[int], mode: run.Mode, log: Callable
) -> list[str]:
    """run.py's table: our sidecar against the msgspec and orjson floors."""
    lines = ["## Sidecar against the floors (bench/run.py)", ""]
    try:
        return lines + run.table(run.measure(ours, floor, sizes, mode, log))
    except driver.ProtocolFailure as error:
        return [*lines, _failure(error)]


def historic_section(
    ours: list[str], historic: list[str], sizes: list[int], mode: run.Mode, log: Callable
) -> list[str]:
    """The historic adapter beside ours as a v1 stream sidecar, one size at a time so a
    crash on one size leaves the others' figures."""
    lines = [
        "## The historic adapter as a sidecar (protocol v1)",
        "",
        f"historic: `{driver.describe_argv(historic)}`",
        "",
        "| metric | ours | historic | historic ÷ ours | n |",
        "|---|---:|---:|---:|---:|",
    ]
    rss: list[str] = []
    sidecars: dict[str, Sequence[str]] = {"ours": ours, "historic": historic}
    for granules in sizes:
        message = make_message(granules)
        size = run._size_text(len(driver.encode(message)))
        metric = f"warm cycle, {run._granules(granules)} ({size})"
        log(f"historic: {metric} ...")
        try:
            warm = driver.warm_cycles(
                sidecars, message, LAMBDA_CONTEXT, mode.budget, mode.min_cycles, mode.max_cycles
            )
        except Exception as error:  # noqa: BLE001 - any crash is a result to report
            lines.append(f"| {metric} | — | {_failure(error)} | — | — |")
            rss.append(f"| peak RSS, {run._granules(granules)} | — | — | — | — |")
            continue
        mine, theirs = warm["ours"], warm["historic"]
        lines.append(
            f"| {metric} | {run._quantity(mine.median, 'ms')} | "
            f"{run._quantity(theirs.median, 'ms')} | {theirs.median / mine.median:.1f}x | "
            f"{len(mine.cycles)} |"
        )
        rss.append(
            f"| peak RSS, {run._granules(granules)} | {run._quantity(mine.peak_rss, 'MB')} | "
            f"{run._quantity(theirs.peak_rss, 'MB')} | {theirs.peak_rss / mine.peak_rss:.1f}x | 1 |"
        )
    log("historic: spawn to first full cycle ...")
    metric = "spawn to first full cycle (1 granule)"
    try:
        cold = driver.spawn_to_first_cycle(sidecars, make_message(1), LAMBDA_CONTEXT, mode.spawns)
        lines.append(
            f"| {metric} | {run._quantity(cold['ours'], 'ms')} | "
            f"{run._quantity(cold['historic'], 'ms')} | {cold['historic'] / cold['ours']:.1f}x | "
            f"{mode.spawns} |"
        )
    except Exception as error:  # noqa: BLE001
        lines.append(f"| {metric} | — | {_failure(error)} | — | — |")
    return lines + rss


def python_client_figures(
    sizes: list[int], historic: Path | None, plan: Plan, cpu: int | None, log: Callable
) -> dict[tuple[str, int], Invocation]:
    """Python client figures by (adapter label, granules), in-process included."""
    figures: dict[tuple[str, int], Invocation] = {}
    with tempfile.TemporaryDirectory() as scratch:
        configurations = python_client.configurations(
            None, Path(scratch), str(historic) if historic else None
        )
        for label, env in configurations:
            for granules in sizes:
                log(f"Python client, {label}, {run._granules(granules)} ...")
                try:
                    result = python_client.measure(
                        env,
                        granules,
                        plan.client_spawns,
                        plan.client_budget,
                        cpu,
                        plan.client_min_calls,
                    )
                except python_client.ProbeFailure as error:
                    figures[label, granules] = Invocation(failure=_failure(error))
                    continue
                figures[label, granules] = Invocation(
                    result["cold"], result["warm"], result["warm_calls"]
                )
    return figures


def node_client_figures(
    adapter_dir: Path, sizes: list[int], protocols: str, quick: bool, log: Callable
) -> tuple[dict[tuple[str, int], Invocation], str]:
    """Node client figures by (launch label, granules) from node_client.js, and a note
    (why there are none, or that the published client is missing)."""
    node = shutil.which("node")
    if node is None:
        return {}, "node is not on PATH: no Node client figures"
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "node.json"
        command = [
            node,
            str(BENCH / "node_client.js"),
            "--adapter-dir",
            str(adapter_dir),
            "--python",
            sys.executable,
            "--sizes",
            ",".join(map(str, sizes)),
            "--protocols",
            protocols,
            "--no-exe",
            "--json",
            str(output),
            *(["--quick"] if quick else []),
        ]
        log(f"Node client: {driver.describe_argv(command)} ...")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if not output.exists():
            lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
            return {}, _failure(RuntimeError(lines[-1]))
        result = json.loads(output.read_text())
    figures = {
        (row["launch"], row["granules"]): Invocation(
            row["coldMs"], row["warmMs"], row["samples"]["warm"], row["publishedMs"]
        )
        for row in result["rows"]
    }
    note = ""
    if protocols.startswith("1") and all(row["publishedMs"] is None for row in result["rows"]):
        note = "the published Node client is not installed (cd clients/node && npm ci)"
    return figures, note


def clients_section(
    python: dict[tuple[str, int], Invocation],
    node: list[tuple[str, dict[tuple[str, int], Invocation]]],
    sizes: list[int],
    notes: list[str],
) -> list[str]:
    """One table: every client over every adapter, beside the in-process Python figure."""
    lines = [
        "## Client invocations (bench/python_client.py, bench/node_client.js)",
        "",
        "The task returns its input, so a client invocation is the adapter's overhead. Cold: "
        "the first invocation in a fresh process (sidecar spawn included); warm: later "
        "invocations on the same sidecar; published: @cumulus/cumulus-message-adapter-js, "
        "which spawns the adapter at every invocation (v1 rows only). Ratios are to the "
        "Python client's warm in-process invocation of the same size.",
        *(f"- {note}" for note in notes),
        "",
        "| granules | client → adapter | cold | warm | in-process warm | warm ÷ in-process "
        "| published client | published ÷ in-process | warm calls |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(f"Python → {label}", label, python) for label in dict.fromkeys(k[0] for k in python)]
    rows += [
        (f"Node → {prefix}{launch}", launch, figures)
        for prefix, figures in node
        for launch in dict.fromkeys(key[0] for key in figures)
    ]
    for granules in sizes:
        reference = python.get((IN_PROCESS, granules), Invocation()).warm
        for title, key, figures in rows:
            figure = figures.get((key, granules))
            if figure is None:
                continue
            if figure.failure:
                lines.append(f"| {granules} | {title} | {figure.failure} | | | | | | |")
                continue
            lines.append(
                f"| {granules} | {title} | {_ms(figure.cold)} | {_ms(figure.warm)} | "
                f"{_ms(reference)} | {_ratio(figure.warm, reference)} | "
                f"{_ms(figure.published)} | {_ratio(figure.published, reference)} | "
                f"{figure.calls} |"
            )
    return lines


def layer_section(bundle: Path, spawns: int, log: Callable) -> list[str]:
    """layer_start.py's table: the bundle's interpreter mode beside its executable."""
    log("layer: spawn to first full cycle of python DIR and cma_bin/cma ...")
    lines = ["## The layer's executable (bench/layer_start.py)", ""]
    try:
        rows, _ = layer_start.table(layer_start.measure(bundle, spawns))
    except Exception as error:  # noqa: BLE001
        return [*lines, _failure(error)]
    return [*lines, f"- {layer_start.describe(bundle)}; {spawns} spawns each", "", *rows]


def shim_adapter(directory: Path) -> Path:
    """A directory that ``python DIR stream`` runs as this checkout's adapter (for the
    Node client when no bundle is given)."""
    directory.mkdir()
    (directory / "__main__.py").write_text(
        f"import sys\nsys.path.insert(0, {str(REPO)!r})\n"
        "from message_adapter.cli import main\nmain()\n"
    )
    return directory


def _node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "no Node"
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return f"Node {done.stdout.strip()}"


def header(argv: list[str], mode: str, cpu: int | None, load: float) -> list[str]:
    """What was run, where, and how busy the machine was."""
    return [
        "# All benchmarks, one run",
        "",
        f"- command: `{shlex.join(['.venv/bin/python', 'bench/all.py', *argv])}`",
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {mode} mode, "
        f"Python {platform.python_version()}, {_node_version()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}, "
        + ("not pinned" if cpu is None else f"everything pinned to CPU {cpu}"),
        f"- load average (1 min) {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
        *run._environment_notes(),
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns 0 once the report is written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--output", type=Path, help="also write the report here")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="comma-separated granule counts (default: %(default)s)",
    )
    parser.add_argument("--bundle", type=Path, help="a bundle directory with cma_bin/cma")
    parser.add_argument(
        "--historic", type=Path, help="a directory of the original NASA adapter (__main__.py)"
    )
    parser.add_argument(
        "--historic-python",
        default=sys.executable,
        help="interpreter for the historic adapter (default: this one)",
    )
    parser.add_argument("--cpu", default="auto", help="as bench/run.py --cpu")
    args = parser.parse_args(argv)
    arguments = sys.argv[1:] if argv is None else argv
    sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
    plan = QUICK if args.quick else FULL
    load = os.getloadavg()[0]

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    # Every Python child imports this checkout's message_adapter, not another install's.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
    )
    cpu = run.pin(args.cpu)
    started = time.perf_counter()
    ours = [sys.executable, "-m", "message_adapter", "stream"]
    floor = [sys.executable, str(BENCH / "floor.py")]
    historic = args.historic.absolute() if args.historic else None
    sections = [sidecar_section(ours, floor, sizes, plan.sidecar, log)]
    if historic:
        historic_argv = [args.historic_python, str(historic), "stream"]
        sections.append(historic_section(ours, historic_argv, sizes, plan.sidecar, log))
    python = python_client_figures(sizes, historic, plan, cpu, log)
    with tempfile.TemporaryDirectory() as scratch:
        adapter = args.bundle.absolute() if args.bundle else shim_adapter(Path(scratch) / "cma")
        figures, note = node_client_figures(adapter, sizes, "1,2", args.quick, log)
        node = [("", figures)]
        notes = [note] if note else []
        if historic and figures:
            theirs, note = node_client_figures(historic, sizes, "1", args.quick, log)
            node.append(("historic adapter, ", theirs))
            if not theirs:
                notes.append(f"historic adapter behind the Node client: {note}")
    sections.append(clients_section(python, node, sizes, notes))
    if args.bundle:
        sections.append(layer_section(args.bundle.absolute(), plan.layer_spawns, log))
    log(f"done in {time.perf_counter() - started:.0f} s")
    lines = header(arguments, "quick" if args.quick else "full", cpu, load)
    for section in sections:
        lines += ["", *section]
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    if args.output:
        args.output.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
