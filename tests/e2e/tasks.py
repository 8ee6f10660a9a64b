"""Tasks the end-to-end workflows run (as `tests/e2e/tasks.py:<function>`)."""

import os
import time


class GranuleCorrupt(Exception):
    """Any other error: the execution fails with this name."""


def make_granules(event, context):
    """Step 1: a payload large enough that ReplaceConfig offloads it to S3."""
    count = int(event["config"]["count"])
    return {"granules": [{"granuleId": f"g{n}", "notes": "x" * 200} for n in range(count)]}


def report(event, context):
    """Step 3: the count from step 2 and the collection from the message."""
    return {**event["input"], "collection": event["config"]["collection"]}


def no_granules(event, context):
    # The Python client's rule: a first argument containing "WorkflowError".
    raise Exception("NoGranulesWorkflowError")


def corrupt(event, context):
    raise GranuleCorrupt("checksum mismatch for g0")


def slow(event, context):
    """Takes a few seconds: long enough to be stopped mid-task."""
    time.sleep(float(event["config"].get("seconds", 3)))
    return {"slept": True}


def tag(event, context):
    """The input plus which worker process ran it."""
    return {"n": event["input"]["n"], "pid": os.getpid()}
