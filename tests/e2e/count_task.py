"""Step 2 as an --exec task: the task protocol only (JSON on stdin, JSON on stdout)."""

import json
import sys

event = json.load(sys.stdin)
granules = event["input"]["granules"]
print(f"counting {len(granules)} granules", file=sys.stderr)
json.dump({"count": len(granules), "first": granules[0]["granuleId"]}, sys.stdout)
