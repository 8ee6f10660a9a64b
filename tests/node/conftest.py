"""The node group reports the counts of its inner ``node --test`` run.

``test_node_client_suite`` runs the whole Node suite as one pytest test; without this its
81 tests would show up as "1 passed". The test hands the node test runner's closing counts
to ``node_counts``, and the hook prints them after pytest's own summary (also when the
suite failed), where ``scripts/test`` picks them up for its per-group line.
"""

from collections.abc import Callable

import pytest

NODE_COUNTS = pytest.StashKey[dict[str, str]]()
_COUNTS = ("tests", "pass", "fail", "cancelled", "skipped", "todo")


@pytest.fixture
def node_counts(pytestconfig: pytest.Config) -> Callable[[str], dict[str, str]]:
    """``record(tap_output)``: keep the ``# tests 81``-style counts for the summary."""

    def record(output: str) -> dict[str, str]:
        counts = {}
        for line in output.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "#" and parts[1] in _COUNTS and parts[2].isdigit():
                counts[parts[1]] = parts[2]
        pytestconfig.stash[NODE_COUNTS] = counts
        return counts

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = terminalreporter.config.stash.get(NODE_COUNTS, None)
    if counts is None:
        return
    shown = ", ".join(
        f"{counts[name]} {name}"
        for name in _COUNTS
        if name in counts and (name in ("tests", "pass", "fail") or counts[name] != "0")
    )
    terminalreporter.write_line(f"node --test: {shown}")
