"""Keep the benchmark runnable: a quick run on the 1-granule message, and raw frame checks.

The benchmark is not run in CI otherwise, so this catches a driver that no longer speaks
the protocol or a table that no longer renders, in well under three seconds.
"""

import shutil
import sys
from pathlib import Path

import msgspec
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import all as bench_all  # noqa: E402
import driver  # noqa: E402
import run  # noqa: E402
from messages import LAMBDA_CONTEXT, make_message  # noqa: E402

SIDECARS = {
    "ours": [sys.executable, "-m", "message_adapter", "stream"],
    "floor": [sys.executable, str(BENCH / "floor.py")],
}


def test_quick_run_renders_every_row(tmp_path: Path) -> None:
    output = tmp_path / "bench.md"
    assert run.main(["--quick", "--sizes", "1", "--cpu", "none", "--output", str(output)]) == 0
    rows = [line for line in output.read_text().splitlines() if line.startswith("| ")]
    metrics = [row.split("|")[1].strip() for row in rows[1:]]
    assert metrics == [
        "warm cycle, 1 granule (2.1 KB)",
        "spawn to first answer (1 granule)",
        "spawn to first full cycle (1 granule), against the orjson floor",
        "spawn to first full cycle (1 granule), against the msgspec floor",
        "cold start to exit (no requests)",
        "peak RSS, 1 granule",
    ]
    assert " 0.0 MB" not in rows[-1]


def _table_rows(report: str, heading: str) -> list[str]:
    """The first cells of the table under ``heading``, its header row left out."""
    section = report.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [" | ".join(cell.strip() for cell in row.split("|")[1:3]) for row in rows[1:]]


def test_one_run_renders_every_section_and_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", "")  # restored afterwards: main() points it here
    output = tmp_path / "all.md"
    argv = ["--quick", "--sizes", "1", "--cpu", "none", "--output", str(output)]
    assert bench_all.main(argv) == 0
    report = output.read_text()
    assert "failed" not in report
    assert "load average (1 min)" in report
    assert _table_rows(report, "## Sidecar against the floors")[0].startswith(
        "warm cycle, 1 granule (2.1 KB)"
    )
    clients = [
        "1 | Python → in-process",
        "1 | Python → sidecar (console script), protocol v1",
        "1 | Python → sidecar (console script), protocol v2",
    ]
    if shutil.which("node"):
        clients += [
            "1 | Node → python DIR stream, protocol v1",
            "1 | Node → python DIR stream, protocol v2",
        ]
    assert _table_rows(report, "## Client invocations") == clients
    assert "## The historic adapter" not in report
    assert "## The layer's executable" not in report


@pytest.mark.parametrize("name", sorted(SIDECARS))
def test_cycle_answers_are_protocol_frames(name: str) -> None:
    message = make_message(1)
    event = driver.encode(message)
    context = driver.encode(LAMBDA_CONTEXT)
    sidecar = driver.Sidecar(SIDECARS[name])
    try:
        sidecar.send(
            "loadAndUpdateRemoteEvent", b'{"event":' + event + b',"context":' + context + b"}"
        )
        answer = sidecar.process.stdout.readline()
        assert answer.endswith(b"\n") and answer.startswith(b"{")
        assert sidecar.process.stdout.readline() == b"<EOC>\n"
        loaded = msgspec.json.decode(answer)
        assert loaded["payload"] == message["payload"]

        cycle = driver.run_cycle(sidecar, event, context)
        driver.check_cycle(message, cycle)
        for frame in (cycle.loaded, cycle.nested, cycle.created):
            assert b"\n" not in frame
            assert isinstance(msgspec.json.decode(frame), dict)
        assert cycle.seconds > 0
        assert sidecar.peak_rss_bytes() > 1 << 20
        sidecar.close()
        assert sidecar.process.returncode == 0
    finally:
        sidecar.kill()


def test_a_broken_answer_is_reported() -> None:
    script = "import sys\nfor _ in range(3): sys.stdin.readline()\nprint('not json\\nnope')"
    sidecar = driver.Sidecar([sys.executable, "-c", script])
    try:
        with pytest.raises(driver.ProtocolFailure, match="<EOC>"):
            sidecar.request("loadNestedEvent", b'{"event":{}}')
    finally:
        sidecar.kill()
