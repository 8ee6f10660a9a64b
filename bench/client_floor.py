"""Where a warm Python client invocation over protocol v2 spends its time, beside in-process.

Each round times, on the same message and the same bytes, one after the other:

- a warm ``run_cumulus_task`` in-process and one through the sidecar (protocol v2);
- the client's JSON work that the process boundary makes unavoidable: encoding the message
  for ``beginTask``, decoding the task's input (the payload: the task needs objects of its
  own; the client decodes the text it sent, which the answer refers to:
  ``referToPayload``), encoding the task's response for ``completeTask`` and decoding the
  answers (the nested event and the next message without the parts referred to:
  ``referToResponse``);
- the task result check, which both modes run (``plain_json`` in sidecar mode, which also
  tells whether the response may be referred to);
- the sidecar's own work on ``beginTask`` and ``completeTask`` (its code run in this
  process, garbage collector off as in the sidecar, answers written as it writes them).

The rest of a sidecar invocation (pipes, waking the other process, freeing what was
decoded, client bookkeeping) is the remainder. Every figure is a median in milliseconds.

Usage: ``.venv/bin/python bench/client_floor.py [--granules 2000] [--rounds 60] [--cpu N|none]``
"""

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent / "clients" / "python"), str(BENCH)]

from messages import LAMBDA_CONTEXT, make_message  # noqa: E402


def _timed(action, samples: list[float]):  # noqa: ANN001, ANN202
    started = time.perf_counter()
    result = action()
    samples.append((time.perf_counter() - started) * 1000)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--granules", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--cpu", default="last", help="pin to this CPU (default: the last)")
    args = parser.parse_args()
    if args.cpu != "none":
        cpu = max(os.sched_getaffinity(0)) if args.cpu == "last" else int(args.cpu)
        os.sched_setaffinity(0, {cpu})  # the sidecar inherits it
    os.environ["CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES"] = str(1 << 40)
    os.environ.pop("CUMULUS_MESSAGE_ADAPTER_PROTOCOL", None)

    from run_cumulus_task import context_dict, run_cumulus_task  # noqa: I001 - bench path
    from run_cumulus_task.output import plain_json
    from run_cumulus_task.sidecar import decode, encode, encode_message, get_sidecar

    from message_adapter.jsonio import dumps
    from message_adapter.sidecar.commands import Adapter
    from message_adapter.sidecar.request_parsing import load_lazy_parser

    load_lazy_parser()
    message = make_message(args.granules)

    def task(event: dict, context: object) -> object:
        return event["input"]

    def invoke(mode: str) -> None:
        os.environ["CUMULUS_MESSAGE_ADAPTER_MODE"] = mode
        run_cumulus_task(task, message, LAMBDA_CONTEXT)

    for _ in range(3):
        invoke("inprocess")
        invoke("sidecar")
    if get_sidecar().protocol != 2:
        raise SystemExit("the sidecar does not speak protocol v2")

    adapter = Adapter()
    context_json = encode(context_dict(LAMBDA_CONTEXT))

    def begin_body(pieces: tuple) -> bytes:
        event = b"".join(bytes(piece) for piece in pieces)
        return b'{"event":' + event + b',"context":' + context_json + b',"referToPayload":true}'

    def complete_body(handle: str, response: object) -> bytes:
        return (
            b'{"handle":'
            + encode(handle)
            + b',"handler_response":'
            + encode(response)
            + b',"referToResponse":true}'
        )

    samples: dict[str, list[float]] = {
        name: []
        for name in (
            "in-process invocation",
            "sidecar invocation (v2)",
            "client: encode message",
            "client: decode the payload sent, for the task",
            "client: decode the answers (parts referred to)",
            "client: encode response",
            "task result check",
            "sidecar: beginTask",
            "sidecar: completeTask",
        )
    }
    for _ in range(args.rounds):
        _timed(lambda: invoke("inprocess"), samples["in-process invocation"])
        _timed(lambda: invoke("sidecar"), samples["sidecar invocation (v2)"])
        pieces, payload_json = _timed(
            lambda: encode_message(message), samples["client: encode message"]
        )
        body = begin_body(pieces)
        gc.disable()
        begun = _timed(
            lambda body=body: dumps(adapter.run_stream_command("beginTask", body)),
            samples["sidecar: beginTask"],
        )
        gc.enable()
        nested = _timed(
            lambda begun=begun: decode(begun),
            samples["client: decode the answers (parts referred to)"],
        )
        response = _timed(
            lambda payload_json=payload_json: decode(payload_json),
            samples["client: decode the payload sent, for the task"],
        )
        _timed(lambda response=response: plain_json(response), samples["task result check"])
        _timed(lambda response=response: encode(response), samples["client: encode response"])
        body = complete_body(nested["handle"], response)
        gc.disable()
        answer = _timed(
            lambda body=body: dumps(adapter.run_stream_command("completeTask", body)),
            samples["sidecar: completeTask"],
        )
        gc.enable()
        answers = samples["client: decode the answers (parts referred to)"]
        _timed(lambda answer=answer: decode(answer), answers)
        answers[-2:] = [answers[-2] + answers[-1]]  # both answers of the round
        del begun, nested, response, answer, body

    medians = {name: statistics.median(values) for name, values in samples.items()}
    in_process = medians["in-process invocation"]
    client_json = sum(medians[name] for name in medians if name.startswith("client:"))
    sidecar_work = medians["sidecar: beginTask"] + medians["sidecar: completeTask"]
    floor = client_json + medians["task result check"] + sidecar_work
    print(
        f"{args.granules} granules ({len(encode(message)) / 1e6:.1f} MB), Python "
        f"{sys.version.split()[0]}, {args.rounds} rounds, load average "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print("| part | median ms | ÷ in-process |")
    print("| --- | ---: | ---: |")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} | {value / in_process:.2f}x |")
    print(f"| client JSON, the parts above | {client_json:.2f} | {client_json / in_process:.2f}x |")
    print(
        f"| sidecar work, both commands | {sidecar_work:.2f} | {sidecar_work / in_process:.2f}x |"
    )
    print(
        f"| floor: client JSON + result check + sidecar work | {floor:.2f} | "
        f"{floor / in_process:.2f}x |"
    )
    rest = medians["sidecar invocation (v2)"] - floor
    print(f"| remainder: pipes, wake-ups, frees | {rest:.2f} | {rest / in_process:.2f}x |")


if __name__ == "__main__":
    main()
