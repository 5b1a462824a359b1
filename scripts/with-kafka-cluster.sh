#!/usr/bin/env bash
# Run a command with the 3-broker Kafka cluster (scripts/kafka.sh cluster-start) on 127.0.0.1,
# its bootstrap list in TABSTREAM_TEST_KAFKA_CLUSTER. A cluster this script started is always
# stopped afterwards (a half-started one too); one that was already running is left alone.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if "$here/kafka.sh" cluster-status >/dev/null 2>&1; then
  echo "kafka cluster: reusing the cluster already running on $("$here/kafka.sh" cluster-bootstrap)"
else
  trap '"$here/kafka.sh" cluster-stop >/dev/null' EXIT INT TERM
  "$here/kafka.sh" cluster-start || exit 1
fi
TABSTREAM_TEST_KAFKA_CLUSTER="$("$here/kafka.sh" cluster-bootstrap)" "$@"
