"""Per-invocation overhead of the Python client ``run_cumulus_task``, sidecar vs in-process.

The task returns its input, so each timing is the adapter work around a task: the three
adapter commands, the JSON to and from the sidecar, and the client's own bookkeeping.

- cold: the first invocation in a fresh Python process (module already imported, as
  in a Lambda's init phase), sidecar spawn or in-process adapter import included;
- warm: later invocations in the same process (the sidecar stays up).

Usage: ``.venv/bin/python bench/python_client.py [--quick] [--bundle DIR] [--historic DIR]
[--output FILE] [--cpu N|none]``. The task process and its sidecar share one CPU by
default: on a virtual machine a round trip between two CPUs pays for waking the idle one,
which makes small timings jump from run to run.
``--bundle`` adds rows for a sidecar started from a bundle directory (its interpreter
mode and its cma_bin/cma executable); ``--historic`` one for the original adapter in a
directory (over v1). Every number is a median, in milliseconds.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CLIENT = REPO / "clients" / "python"
SIZES = (1, 2000)

# One measurement in a fresh interpreter: a cold call, then warm calls; prints JSON.
PROBE = r"""
import gc, json, os, sys, time
sys.path[:0] = [{client!r}, {bench!r}]
from messages import LAMBDA_CONTEXT, make_message
from run_cumulus_task import run_cumulus_task

def task(event, context):
    return event["input"]

message = make_message({granules})
started = time.perf_counter()
result = run_cumulus_task(task, message, LAMBDA_CONTEXT)
cold = time.perf_counter() - started
assert result["payload"] == message["payload"]
warm = []
deadline = time.perf_counter() + {budget}
while len(warm) < {min_calls} or (time.perf_counter() < deadline and len(warm) < {max_calls}):
    started = time.perf_counter()
    run_cumulus_task(task, message, LAMBDA_CONTEXT)
    warm.append(time.perf_counter() - started)
print(json.dumps({{"cold": cold, "warm": warm}}))
"""


def measure(
    env: dict[str, str],
    granules: int,
    spawns: int,
    budget: float,
    cpu: int | None,
    min_calls: int = 5,
) -> dict:
    """Median cold over ``spawns`` fresh processes, median warm over all their warm calls.

    Raises ``ProbeFailure`` when a probe process fails (e.g. its adapter crashed).
    """
    colds, warms = [], []
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    for _ in range(spawns):
        code = PROBE.format(
            client=str(CLIENT),
            bench=str(BENCH),
            granules=granules,
            budget=budget,
            min_calls=min_calls,
            max_calls=2000,
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            cwd=REPO,
            preexec_fn=pin,
        )
        if done.returncode != 0:
            raise ProbeFailure(
                done.stderr.strip().splitlines()[-1]
                if done.stderr.strip()
                else f"exit code {done.returncode}",
                done.stderr,
            )
        result = json.loads(done.stdout)
        colds.append(result["cold"])
        warms.extend(result["warm"])
    return {
        "cold": statistics.median(colds) * 1000,
        "warm": statistics.median(warms) * 1000,
        "warm_calls": len(warms),
    }


class ProbeFailure(RuntimeError):
    """A probe process failed; ``detail`` is its stderr."""

    def __init__(self, summary: str, detail: str) -> None:
        super().__init__(summary)
        self.detail = detail


def base_environment() -> dict[str, str]:
    """This process's environment without adapter settings, output size limit lifted."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CUMULUS_MESSAGE_ADAPTER")
    }
    # 2000 granules (1.7 MB) are over Step Functions' 256 KiB limit, which the client
    # enforces; a limit this high keeps the size check, and its cost, in every call.
    base["CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES"] = str(1 << 40)
    return base


def configurations(
    bundle: str | None, scratch: Path, historic: str | None = None
) -> list[tuple[str, dict[str, str]]]:
    """``(label, environment)`` for each way of running the adapter.

    ``historic`` is a directory of the original adapter (no cma-bundle.json): the client
    starts it as ``python DIR stream`` and, since it knows no ``hello``, speaks v1 to it.
    """
    base = base_environment()
    sidecar = {**base, "CUMULUS_MESSAGE_ADAPTER_MODE": "sidecar"}
    rows = [
        ("in-process", {**base, "CUMULUS_MESSAGE_ADAPTER_MODE": "inprocess"}),
        (
            "sidecar (console script), protocol v1",
            {**sidecar, "CUMULUS_MESSAGE_ADAPTER_PROTOCOL": "1"},
        ),
        ("sidecar (console script), protocol v2", sidecar),
    ]
    if bundle:
        out = Path(bundle).absolute()
        rows.append(("sidecar (python BUNDLE)", {**base, "CUMULUS_MESSAGE_ADAPTER_DIR": str(out)}))
        if (out / "cma_bin" / "cma").exists():
            # A layer whose Python does not match makes the client use the executable.
            layer = scratch / "layer"
            layer.mkdir()
            (layer / "cma_bin").symlink_to(out / "cma_bin")
            (layer / "cma-bundle.json").write_text(json.dumps({"python": "0.0"}))
            rows.append(
                (
                    "sidecar (BUNDLE/cma_bin/cma)",
                    {**base, "CUMULUS_MESSAGE_ADAPTER_DIR": str(layer)},
                )
            )
    if historic:
        rows.append(
            (
                "historic adapter (python DIR stream), protocol v1",
                {**base, "CUMULUS_MESSAGE_ADAPTER_DIR": str(Path(historic).absolute())},
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for smoke runs")
    parser.add_argument("--bundle", help="also measure a sidecar from this bundle directory")
    parser.add_argument(
        "--historic", help="also measure the original adapter from this directory (v1)"
    )
    parser.add_argument("--output", help="also write the markdown table to this file")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="comma-separated granule counts (default: %(default)s)",
    )
    parser.add_argument(
        "--cpu",
        default="last",
        help="pin the task process and its sidecar to this CPU (default: the "
        "last one; 'none' to let them float)",
    )
    args = parser.parse_args()
    spawns, budget = (2, 0.2) if args.quick else (7, 3.0)
    cpu = (
        None
        if args.cpu == "none"
        else (max(os.sched_getaffinity(0)) if args.cpu == "last" else int(args.cpu))
    )

    lines = [
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; task returns its input; "
        f"medians of {spawns} fresh processes (cold) and of all their later calls (warm); "
        + ("not pinned." if cpu is None else f"task and sidecar pinned to CPU {cpu}."),
        "",
        "| adapter | granules | cold ms | warm ms | warm calls |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        for label, env in configurations(args.bundle, Path(scratch), args.historic):
            for granules in [int(size) for size in args.sizes.split(",") if size.strip()]:
                started = time.perf_counter()
                try:
                    result = measure(env, granules, spawns, budget, cpu)
                except ProbeFailure as error:
                    raise SystemExit(f"probe failed:\n{error.detail}") from None
                lines.append(
                    f"| {label} | {granules} | {result['cold']:.2f} | "
                    f"{result['warm']:.3f} | {result['warm_calls']} |"
                )
                print(lines[-1], f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    table = "\n".join(lines) + "\n"
    print(table)
    if args.output:
        Path(args.output).write_text(table)


if __name__ == "__main__":
    main()
