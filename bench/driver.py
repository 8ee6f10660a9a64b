"""Drive stream sidecars through full adapter cycles and time them.

A cycle is what a task wrapper does around one task run: ``loadAndUpdateRemoteEvent``,
then ``loadNestedEvent`` on its answer, then ``createNextEvent`` with the nested event's
``input`` as the task's response. The driver splices answers into the next request as
raw JSON bytes (it never re-encodes a message), so its own cost stays small and is the
same for every sidecar; only the three request/answer round trips are timed.
"""

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

END = b"<EOC>\n"
PIPE_BUFFER = 1 << 20


class ProtocolFailure(AssertionError):
    """A sidecar broke the protocol, answered an error or gave a wrong answer."""


class _Nested(msgspec.Struct):
    input: msgspec.Raw
    messageConfig: msgspec.Raw = msgspec.Raw()


_decode_nested = msgspec.json.Decoder(_Nested).decode
_decode = msgspec.json.Decoder().decode
encode = msgspec.json.Encoder().encode


class Sidecar:
    """One running sidecar process speaking the stream protocol on its stdin/stdout."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=PIPE_BUFFER,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, command: str, body: bytes) -> None:
        """Write one request frame."""
        stdin = self.process.stdin
        stdin.write(command.encode() + b"\n")
        stdin.write(body)
        stdin.write(b"\n" + END)
        stdin.flush()

    def receive(self, command: str) -> bytes:
        """Read one answer frame; return its JSON line without the newline."""
        readline = self.process.stdout.readline
        line = readline()
        if line == b"<ERROR>\n":
            detail = readline().strip().decode(errors="replace")
            readline()
            raise ProtocolFailure(f"{command}: the sidecar answered an error frame: {detail}")
        if not line.endswith(b"\n"):
            raise ProtocolFailure(
                f"{command}: the sidecar's output ended without an answer "
                f"(exit code {self.process.poll()}); stderr: {self.stderr_text()!r}"
            )
        closing = readline()
        if closing != END:
            raise ProtocolFailure(
                f"{command}: the answer is not one JSON line followed by '<EOC>' "
                f"(next line was {closing[:80]!r})"
            )
        return line[:-1]

    def request(self, command: str, body: bytes) -> bytes:
        """Send one request and return the answer's JSON bytes."""
        self.send(command, body)
        return self.receive(command)

    def peak_rss_bytes(self) -> int:
        """Largest VmHWM in the sidecar's process tree (the sidecar may be a wrapper)."""
        return max((_vm_hwm(pid) for pid in _process_tree(self.pid)), default=0)

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode(errors="replace")

    def close(self) -> None:
        """Send ``<EXIT>`` and require a clean exit.

        ``wait`` without a timeout blocks in ``waitpid``; with one, subprocess polls with
        growing sleeps, which would add milliseconds to the start-to-exit timing.
        """
        try:
            self.process.stdin.write(b"<EXIT>\n")
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        code = self.process.wait()
        self.process.stdout.close()
        text = self.stderr_text()
        self._stderr.close()
        if code != 0:
            raise ProtocolFailure(f"{self.argv[0]} exited {code} after <EXIT>; stderr: {text!r}")

    def kill(self) -> None:
        """Stop the process if it is still running (cleanup after a failure)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _process_tree(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
            except OSError:
                continue
    return found


def _vm_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Cycle:
    """The three answers of one cycle and the time spent waiting for them."""

    seconds: float
    loaded: bytes
    nested: bytes
    created: bytes


def run_cycle(sidecar: Sidecar, event: bytes, context: bytes) -> Cycle:
    """One full adapter cycle, the task's response being the nested event's input."""
    clock = time.perf_counter
    started = clock()
    loaded = sidecar.request(
        "loadAndUpdateRemoteEvent", b'{"event":' + event + b',"context":' + context + b"}"
    )
    elapsed = clock() - started
    body = b'{"event":' + loaded + b',"context":' + context + b',"schemas":null}'
    started = clock()
    nested = sidecar.request("loadNestedEvent", body)
    elapsed += clock() - started
    parts = _decode_nested(nested)
    body = b'{"event":' + loaded + b',"handler_response":' + bytes(parts.input)
    if len(parts.messageConfig):
        body += b',"message_config":' + bytes(parts.messageConfig)
    body += b',"schemas":null}'
    started = clock()
    created = sidecar.request("createNextEvent", body)
    elapsed += clock() - started
    return Cycle(elapsed, loaded, nested, created)


def check_cycle(message: dict, cycle: Cycle) -> None:
    """Require the answers every correct sidecar gives for a message without templates
    in its payload: the payload carried through to the task input and back."""
    loaded = _object(cycle.loaded, "loadAndUpdateRemoteEvent")
    nested = _object(cycle.nested, "loadNestedEvent")
    created = _object(cycle.created, "createNextEvent")
    for key in ("cumulus_meta", "payload"):
        if loaded.get(key) != message[key]:
            raise ProtocolFailure(f"loadAndUpdateRemoteEvent changed the message's {key}")
    if nested.get("input") != message["payload"]:
        raise ProtocolFailure("loadNestedEvent: input is not the message payload")
    if not isinstance(nested.get("config"), dict):
        raise ProtocolFailure("loadNestedEvent: config is not an object")
    if created.get("payload") != nested["input"]:
        raise ProtocolFailure("createNextEvent: payload is not the task's response")
    if created.get("cumulus_meta") != message["cumulus_meta"]:
        raise ProtocolFailure("createNextEvent changed cumulus_meta")


def _object(answer: bytes, command: str) -> dict:
    try:
        value = _decode(answer)
    except msgspec.DecodeError as error:
        raise ProtocolFailure(f"{command}: the answer is not JSON ({error})") from None
    if not isinstance(value, dict):
        raise ProtocolFailure(f"{command}: the answer is not a JSON object")
    return value


@dataclass
class WarmResult:
    """Warm cycle timings of one sidecar on one message."""

    cycles: list[float] = field(default_factory=list)
    peak_rss: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.cycles)


def warm_cycles(
    sidecars: dict[str, Sequence[str]],
    message: dict,
    context: dict,
    budget: float,
    min_cycles: int,
    max_cycles: int,
) -> dict[str, WarmResult]:
    """Median warm cycle time of each sidecar on ``message``, cycles interleaved.

    Each sidecar gets one fresh process. The first cycle is checked for correct answers;
    warm-up follows, then the number of timed cycles is chosen so that all of them fit
    in ``budget`` seconds (within ``min_cycles``..``max_cycles``). Alternating sidecars
    cycle by cycle spreads the noise of a shared machine evenly over them.
    """
    event, context_bytes = encode(message), encode(context)
    running: dict[str, Sidecar] = {}
    try:
        for name, argv in sidecars.items():
            running[name] = Sidecar(argv)
        started = time.perf_counter()
        for sidecar in running.values():
            check_cycle(message, run_cycle(sidecar, event, context_bytes))
        first_round = time.perf_counter() - started
        warmups = max(1, min(50, int(0.1 * budget / max(first_round, 1e-6))))
        started = time.perf_counter()
        for _ in range(warmups):
            for sidecar in running.values():
                run_cycle(sidecar, event, context_bytes)
        per_round = (time.perf_counter() - started) / warmups
        count = max(min_cycles, min(max_cycles, int(budget / max(per_round, 1e-6))))
        results = {name: WarmResult() for name in running}
        order = list(running.items())
        for index in range(count):
            for name, sidecar in order if index % 2 == 0 else reversed(order):
                results[name].cycles.append(run_cycle(sidecar, event, context_bytes).seconds)
        for name, sidecar in running.items():
            results[name].peak_rss = sidecar.peak_rss_bytes()
            sidecar.close()
        return results
    finally:
        for sidecar in running.values():
            sidecar.kill()


def _interleaved(
    sidecars: dict[str, Sequence[str]], repeats: int, measure: Callable[[Sequence[str]], float]
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in sidecars}
    order = list(sidecars.items())
    for index in range(repeats):
        for name, argv in order if index % 2 == 0 else reversed(order):
            samples[name].append(measure(argv))
    return {name: statistics.median(values) for name, values in samples.items()}


def spawn_to_first_answer(
    sidecars: dict[str, Sequence[str]], message: dict, context: dict, repeats: int
) -> dict[str, float]:
    """Median seconds from spawn until the first ``loadAndUpdateRemoteEvent`` answer."""
    body = b'{"event":' + encode(message) + b',"context":' + encode(context) + b"}"

    def measure(argv: Sequence[str]) -> float:
        started = time.perf_counter()
        sidecar = Sidecar(argv)
        try:
            answer = sidecar.request("loadAndUpdateRemoteEvent", body)
            elapsed = time.perf_counter() - started
            if _object(answer, "loadAndUpdateRemoteEvent").get("payload") != message["payload"]:
                raise ProtocolFailure("loadAndUpdateRemoteEvent changed the payload")
            sidecar.close()
            return elapsed
        finally:
            sidecar.kill()

    return _interleaved(sidecars, repeats, measure)


def spawn_to_first_cycle(
    sidecars: dict[str, Sequence[str]], message: dict, context: dict, repeats: int
) -> dict[str, float]:
    """Median seconds from spawn until the third answer of a first full cycle (v1)."""
    event, context_bytes = encode(message), encode(context)

    def measure(argv: Sequence[str]) -> float:
        started = time.perf_counter()
        sidecar = Sidecar(argv)
        try:
            cycle = run_cycle(sidecar, event, context_bytes)
            elapsed = time.perf_counter() - started
            check_cycle(message, cycle)
            sidecar.close()
            return elapsed
        finally:
            sidecar.kill()

    return _interleaved(sidecars, repeats, measure)


def start_to_exit(sidecars: dict[str, Sequence[str]], repeats: int) -> dict[str, float]:
    """Median seconds from spawn to a clean exit when the stream is just ``<EXIT>``."""

    def measure(argv: Sequence[str]) -> float:
        started = time.perf_counter()
        sidecar = Sidecar(argv)
        try:
            sidecar.close()
            return time.perf_counter() - started
        finally:
            sidecar.kill()

    return _interleaved(sidecars, repeats, measure)


def describe_argv(argv: Sequence[str]) -> str:
    """A short readable form of a command line for reports."""
    home = os.getcwd() + os.sep
    return " ".join(part.replace(home, "") for part in argv)


def json_value(answer: bytes) -> Any:
    """Parse an answer (for callers that inspect answers themselves)."""
    return _decode(answer)
