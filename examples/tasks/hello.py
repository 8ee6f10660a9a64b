"""Example Python task: greet the configured name and count the input granules.

cumulus-message-adapter run examples/tasks/hello.py:handler examples/tasks/message.json
"""

import sys


def handler(event, context):
    granules = (event["input"] or {}).get("granules", [])
    if not granules:
        # A first argument containing "WorkflowError" continues the workflow with
        # `exception` set to it, as the Python client does on Lambda.
        raise Exception("NothingToDoWorkflowError: the input has no granules")
    print(f"greeting {event['config']['name']}", file=sys.stderr)  # logs go to stderr
    return {"greeting": f"hello {event['config']['name']}", "granule_count": len(granules)}
