#!/bin/sh
# Example shell task under the --exec task protocol (no client library, no jq):
# the nested event arrives as JSON on stdin; the result is printed as JSON on stdout.
#   cumulus-message-adapter run --exec "sh examples/tasks/hello.sh" examples/tasks/message.json
event=$(cat)
size=$(printf '%s' "$event" | wc -c | tr -d ' ')
echo "received $size bytes" >&2                 # a log line
case "$event" in
  *'"granules":[]'*)
    # The last stderr line names the error; a name containing WorkflowError lets the
    # workflow go on with "exception" set instead of failing.
    echo '{"name": "NothingToDoWorkflowError", "message": "no granules"}' >&2
    exit 1 ;;
esac
printf '{"event_bytes": %s}\n' "$size"
