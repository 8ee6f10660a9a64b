"""The sidecar's bounds: memory for requests written over many lines, nesting depth."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO, run_adapter, strict_json

PEAK_RSS_OF_CHILD = """
import resource, subprocess, sys
with open(sys.argv[1], "rb") as stdin:
    done = subprocess.run(
        [sys.executable, "-m", "message_adapter", "stream"], stdin=stdin,
        stdout=subprocess.DEVNULL,
    )
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_kib(frames: Path) -> int:
    """Peak RSS of a sidecar answering ``frames``, measured by a process of its own."""
    done = subprocess.run(
        [PYTHON, "-c", PEAK_RSS_OF_CHILD, str(frames)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    code, peak = done.stdout.split()
    assert code == "0", done.stderr
    return int(peak)


def ingest_message(granules: int) -> dict:
    return {
        "cumulus_meta": {"state_machine": "sm", "execution_name": "ex"},
        "meta": {"collection": {"name": "MOD09GQ"}},
        "payload": {
            "granules": [
                {
                    "granuleId": f"MOD09GQ.A{index:07d}",
                    "files": [
                        {"bucket": "protected", "key": f"{index}/file{n}.hdf", "size": n * index}
                        for n in range(3)
                    ],
                }
                for index in range(granules)
            ]
        },
    }


@pytest.mark.parametrize("command", ["loadAndUpdateRemoteEvent", "createNextEvent"])
def test_a_request_over_many_lines_costs_at_most_twice_the_memory_of_one_line(
    tmp_path: Path, command: str
) -> None:
    request = {"event": ingest_message(60000), "handler_response": {"done": True}}
    peaks = {}
    for name, indent in (("one line", None), ("many lines", 1)):
        body = json.dumps(request, indent=indent).encode()
        frames = tmp_path / f"{name}.in"
        frames.write_bytes(command.encode() + b"\n" + body + b"\n<EOC>\n<EXIT>\n")
        peaks[name] = peak_rss_kib(frames)
    assert body.count(b"\n") > 1_000_000
    assert peaks["many lines"] < 2 * peaks["one line"], peaks


def test_a_request_over_many_lines_gets_the_same_answer_as_on_one_line() -> None:
    request = {"event": {**ingest_message(400), "task_config": {"n": "{$.meta.collection}"}}}
    answers = []
    for indent in (None, 2):
        body = json.dumps(request, indent=indent).encode().replace(b"\n", b"\r\n")
        result = run_adapter("stream", stdin=b"loadNestedEvent\n" + body + b"\n<EOC>\n")
        assert result.returncode == 0, result.stderr
        line, end, rest = result.stdout.split(b"\n")
        assert (end, rest) == (b"<EOC>", b"")
        answers.append(strict_json(line))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("part", ["payload", "task_config", "meta"])
def test_the_nesting_limit_is_the_same_in_every_part(part: str) -> None:
    def request(levels: int) -> bytes:
        value = "[" * levels + "1" + "]" * levels
        if part == "task_config":
            value = '{"a": ' + value + "}"
        return b'{"event": {"%s": %s}}' % (part.encode(), value.encode())

    accepted = run_adapter("loadNestedEvent", stdin=request(900))
    assert accepted.returncode == 0, accepted.stderr
    refused = run_adapter("loadNestedEvent", stdin=request(1100))
    assert refused.returncode == 1
    assert b"ProtocolError" in refused.stderr and b"nests" in refused.stderr
