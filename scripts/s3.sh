#!/usr/bin/env bash
# An S3-compatible server for tests: S3Proxy (filesystem-nio2 backend: objects are files under a
# data dir), resolved from Maven Central like scripts/kafka.sh resolves Kafka.
#   scripts/s3.sh install   resolve the server's jars into .s3/libs (cached; rerun is a no-op)
#   scripts/s3.sh start     serve on 127.0.0.1:$S3_PORT (AWS SigV2/V4 auth) and create $S3_BUCKET
#   scripts/s3.sh stop      stop the server this script started (by its recorded PID only) and
#                           remove its files (the data too, unless S3_DATA_DIR named its folder)
#   scripts/s3.sh status    exit 0 when the recorded server is alive and answers for the bucket
# Settings (environment): S3_PORT (9000), S3_BUCKET (tabstream), S3_ACCESS_KEY and S3_SECRET_KEY
# (the test credentials clients sign with), S3_DATA_DIR (keep objects there across stop/start,
# e.g. to restart the server under a running job), S3_HEAP (192m).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
home="$root/.s3"
libs="$home/libs"
run="$home/run"
port="${S3_PORT:-9000}"
bucket="${S3_BUCKET:-tabstream}"
access_key="${S3_ACCESS_KEY:-tabstream-test}"
secret_key="${S3_SECRET_KEY:-tabstream-test-secret-key}"
heap="${S3_HEAP:-192m}"
pidfile="$run/s3-$port.pid"
dirfile="$run/s3-$port.dir"
endpoint="http://127.0.0.1:$port"
empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

install() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  mkdir -p "$libs"
  mvn -q -B -f "$root/scripts/s3-pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs"
  touch "$libs/.complete"
  echo "s3: installed $(ls "$libs" | grep -c jar) jars into $libs"
}

# The HTTP status of a signed request (000: nothing answered).
signed() {
  local method="$1" path="$2"
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$method" \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" \
    -H "x-amz-content-sha256: $empty_sha256" "$endpoint$path" || true
}

listening() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$endpoint/" || true)" != "000" ]
}

alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

write_config() {
  local state="$1" data="$2"
  cat >"$state/s3proxy.conf" <<CONF
s3proxy.endpoint=$endpoint
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$access_key
s3proxy.credential=$secret_key
jclouds.provider=filesystem-nio2
jclouds.filesystem.basedir=$data
CONF
  cat >"$state/logback.xml" <<CONF
<configuration>
  <appender name="out" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d %level %logger{30} %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="out"/></root>
</configuration>
CONF
}

start() {
  install
  mkdir -p "$run"
  if alive; then echo "s3: already running on $endpoint (pid $(cat "$pidfile"))"; return 0; fi
  if listening; then echo "s3: something else answers on $endpoint; pick another S3_PORT" >&2; return 1; fi
  local state data
  state="$(mktemp -d "${TMPDIR:-/tmp}/tabstream-s3-$port.XXXXXX")"
  data="${S3_DATA_DIR:-$state/data}"
  mkdir -p "$data"
  write_config "$state" "$data"
  nohup java -Xms32m -Xmx"$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlogback.configurationFile="$state/logback.xml" -cp "$libs/*" \
    org.gaul.s3proxy.Main --properties "$state/s3proxy.conf" >"$state/server.log" 2>&1 &
  echo $! >"$pidfile"
  echo "$state" >"$dirfile"
  for _ in $(seq 1 120); do
    if ! alive; then echo "s3: server exited; see $state/server.log" >&2; tail -20 "$state/server.log" >&2; return 1; fi
    if listening; then break; fi
    sleep 0.25
  done
  local code
  code="$(signed PUT "/$bucket")"
  case "$code" in
    200 | 409) echo "s3: up on $endpoint (pid $(cat "$pidfile"), bucket $bucket, data $data)" ;;
    *) echo "s3: creating bucket $bucket answered HTTP $code; see $state/server.log" >&2; return 1 ;;
  esac
}

stop() {
  if [ -f "$pidfile" ]; then
    local pid; pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  fi
  if [ -f "$dirfile" ]; then rm -rf "$(cat "$dirfile")"; rm -f "$dirfile"; fi
  echo "s3: stopped (port $port)"
}

status() {
  if alive && [ "$(signed HEAD "/$bucket")" = 200 ]; then
    echo "s3: running on $endpoint (pid $(cat "$pidfile"), bucket $bucket)"; return 0
  fi
  echo "s3: not running on $endpoint"; return 1
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
