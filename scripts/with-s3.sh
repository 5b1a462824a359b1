#!/usr/bin/env bash
# Run a command with the test S3 server (scripts/s3.sh) on 127.0.0.1:$S3_PORT. A server this
# script started is always stopped afterwards; one that was already running is left alone.
# The command sees TABSTREAM_TEST_S3 (host:port), TABSTREAM_TEST_S3_BUCKET and the test
# credentials (TABSTREAM_TEST_S3_ACCESS_KEY, TABSTREAM_TEST_S3_SECRET_KEY).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${S3_PORT:-9000}"
if "$here/s3.sh" status >/dev/null 2>&1; then
  echo "s3: reusing the server already running on 127.0.0.1:$port"
else
  "$here/s3.sh" start || exit 1
  trap '"$here/s3.sh" stop >/dev/null' EXIT INT TERM
fi
TABSTREAM_TEST_S3="127.0.0.1:$port" \
  TABSTREAM_TEST_S3_BUCKET="${S3_BUCKET:-tabstream}" \
  TABSTREAM_TEST_S3_ACCESS_KEY="${S3_ACCESS_KEY:-tabstream-test}" \
  TABSTREAM_TEST_S3_SECRET_KEY="${S3_SECRET_KEY:-tabstream-test-secret-key}" \
  "$@"
