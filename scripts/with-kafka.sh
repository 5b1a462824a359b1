#!/usr/bin/env bash
# Run a command with a single-node Kafka on 127.0.0.1:$KAFKA_PORT. A broker this script started is
# always stopped afterwards; one that was already running (a developer's) is left alone.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${KAFKA_PORT:-9092}"
if "$here/kafka.sh" status >/dev/null 2>&1; then
  echo "kafka: reusing the broker already running on 127.0.0.1:$port"
else
  "$here/kafka.sh" start || exit 1
  trap '"$here/kafka.sh" stop >/dev/null' EXIT INT TERM
fi
TABSTREAM_TEST_KAFKA="127.0.0.1:$port" "$@"
