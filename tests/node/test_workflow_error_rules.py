"""The adapter's WorkflowError rule for Node and ``--exec`` tasks is the Node client's rule.

``run`` and ``activity`` decide by an error's name (``workflow_errors.named_workflow_error``)
whether a failure continues the workflow, as the Node client (clients/node) does when a
task throws. The same table of names goes through both: the Node client drives a stand-in
adapter (clients/node/tests/fake-adapter.js) and a task that throws an error so named.
"""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from message_adapter.tasks.workflow_errors import named_workflow_error, workflow_error_message

pytestmark = pytest.mark.node

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"

NAMES: list[Any] = [
    "NoGranulesWorkflowError",
    "WorkflowError",
    "WorkflowErrorAtTheStart",
    "workflowerror",
    "Workflow Error",
    "GranuleCorrupt",
    "Error",
    "TypeError",
    "",
    42,
    None,
]

MESSAGE = {"cumulus_meta": {"execution_name": "e1"}, "meta": {}, "payload": {"granules": []}}

# For each name: run a task throwing an Error with that name (null: the task throws null),
# print [name, the returned message] or [name, null] when runCumulusTask rejects.
NODE_SCRIPT = """
const { MessageAdapter } = require('.');
const [names, message, fake] = JSON.parse(process.argv[1]);
(async () => {
  const adapter = new MessageAdapter({ command: [process.execPath, fake] });
  const decisions = [];
  for (const name of names) {
    const task = () => {
      if (name === null) throw null;
      const error = new Error('the task failed');
      error.name = name;
      throw error;
    };
    try {
      decisions.push([name, await adapter.runCumulusTask(task, message, {})]);
    } catch (error) {
      decisions.push([name, null]);
    }
  }
  await adapter.close();
  console.log(JSON.stringify(decisions));
})();
"""


def test_adapter_and_node_client_agree_on_every_name() -> None:
    node = shutil.which("node")
    if not node:
        pytest.fail("the node group needs Node.js 18+ on PATH")
    fake = str(CLIENT / "tests" / "fake-adapter.js")
    result = subprocess.run(
        [node, "-e", NODE_SCRIPT, json.dumps([NAMES, MESSAGE, fake])],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    node_decisions = json.loads(result.stdout)
    expected = []
    for name in NAMES:
        exception = named_workflow_error(name)
        expected.append(
            [name, None if exception is None else workflow_error_message(MESSAGE, exception)]
        )
    assert node_decisions == expected
    assert {decision is None for _, decision in node_decisions} == {True, False}
