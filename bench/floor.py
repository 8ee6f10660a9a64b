"""The protocol floor: the least a stream sidecar can do and still answer every frame.

It reads frames exactly as the adapter does (``COMMAND\\n<JSON>\\n<EOC>\\n``, ``<EXIT>``
ends), parses each request with msgspec and answers with what the protocol needs and
nothing more: no templates, no task bookkeeping, no schemas, no remote store. Whatever
the real adapter costs above this is the price of the Cumulus message rules.

Two cheap process habits any sidecar can have are part of the floor. The cyclic garbage
collector is off: parsed JSON has no reference cycles, and with it on the floor would
mostly measure the collector rescanning large messages (it doubles the parse time at
20000 granules). Each request is freed only after its answer is written: freeing a large
message takes a while, and the client can read the answer meanwhile.
"""

import gc
import os
import sys


def answer(command: bytes, request: dict) -> object:
    """The minimal answer to one request (the request itself is left as it was)."""
    event = request["event"]
    if command == b"loadNestedEvent":
        return {"input": event.get("payload"), "config": {}}
    if command == b"createNextEvent":
        return {**event, "payload": request.get("handler_response")}
    return event


def codec(library: str) -> tuple:
    """``(decode, encode)`` of the JSON library named (``msgspec`` or ``orjson``)."""
    if library == "orjson":
        import orjson

        return orjson.loads, orjson.dumps
    import msgspec

    return msgspec.json.Decoder().decode, msgspec.json.Encoder().encode


def main() -> None:
    """Serve frames on stdin/stdout until ``<EXIT>`` or end of input.

    ``python floor.py [msgspec|orjson]``: the JSON library (default msgspec). orjson
    imports in a millisecond or two, so the orjson floor is the cold-start floor.
    """
    gc.disable()
    decode, encode = codec(sys.argv[1] if len(sys.argv) > 1 else "msgspec")
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
        request = decode(lines[0] if len(lines) == 1 else b"".join(lines))
        lines = None
        stdout.write(encode(answer(command, request)))
        stdout.write(b"\n<EOC>\n")
        stdout.flush()
        request = None
    stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
