"""The protocol floor: the least a stream sidecar can do and still answer every frame.

It reads frames exactly as the adapter does (``COMMAND\\n<JSON>\\n<EOC>\\n``, ``<EXIT>``
ends), parses each request with msgspec and answers with what the protocol needs and
nothing more: no templates, no task bookkeeping, no schemas, no remote store. Whatever
the real adapter costs above this is the price of the Cumulus message rules.

The cyclic garbage collector is off: parsed JSON has no reference cycles, and with it on
the floor would mostly measure the collector rescanning large messages (it doubles the
parse time at 20000 granules), which any sidecar can avoid with one call.
"""

import gc
import os
import sys

import msgspec


def answer(command: bytes, request: dict) -> object:
    """The minimal answer to one request."""
    event = request["event"]
    if command == b"loadNestedEvent":
        return {"input": event.get("payload"), "config": {}}
    if command == b"createNextEvent":
        event["payload"] = request.get("handler_response")
    return event


def main() -> None:
    """Serve frames on stdin/stdout until ``<EXIT>`` or end of input."""
    gc.disable()
    decode = msgspec.json.Decoder().decode
    encode = msgspec.json.Encoder().encode
    readline = sys.stdin.buffer.readline
    stdout = sys.stdout.buffer
    while True:
        command = readline()
        if not command:
            break
        command = command.strip()
        if not command:
            continue
        if command == b"<EXIT>":
            break
        lines = []
        while True:
            line = readline()
            if not line or line.strip() == b"<EOC>":
                break
            lines.append(line)
        body = lines[0] if len(lines) == 1 else b"".join(lines)
        stdout.write(encode(answer(command, decode(body))))
        stdout.write(b"\n<EOC>\n")
        stdout.flush()
    stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
