"""Every module of the package imports on its own: no import cycles, no hidden order.

A cycle (a imports b, which imports a) can work when something else happened to import
one of them first and fail when a user imports the other one first. So each module is
imported first, in an interpreter where no module of the package is loaded yet: one fresh
interpreter imports them in turn, dropping the package's modules from ``sys.modules``
before each (the third-party libraries stay loaded; they cannot hide a cycle of ours).
"""

import json
import pkgutil
import subprocess

import message_adapter
from tests.helpers import PYTHON, REPO

# Imports each module named on the command line with none of the package loaded before;
# prints {module: "ExceptionType: message"} for those that fail.
IMPORT_EACH = """
import importlib, json, sys, traceback
failures = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] == "message_adapter"]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException as error:
        failures[name] = traceback.format_exception_only(type(error), error)[-1].strip()
print(json.dumps(failures))
"""


def package_modules() -> list[str]:
    """Every module and subpackage of message_adapter, ``__main__`` modules aside (they run)."""
    names = ["message_adapter"]
    for module in pkgutil.walk_packages(message_adapter.__path__, "message_adapter."):
        if not module.name.endswith("__main__"):
            names.append(module.name)
    return names


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    modules = package_modules()
    assert {"message_adapter.cli.app", "message_adapter.sidecar.protocol"} <= set(modules)
    result = subprocess.run(
        [PYTHON, "-c", IMPORT_EACH, *modules],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}
