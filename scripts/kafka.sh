#!/usr/bin/env bash
# Apache Kafka (KRaft) for tests and benchmarks, resolved from Maven Central: one broker, or a
# cluster of 3 combined broker+controller nodes (a 3-voter quorum) on loopback.
#   scripts/kafka.sh install   resolve the broker jars into .kafka/libs (cached; rerun is a no-op)
#   scripts/kafka.sh start     format a fresh log dir, start on 127.0.0.1:$KAFKA_PORT, wait for metadata
#   scripts/kafka.sh stop      stop the broker this script started (by its recorded PID only)
#   scripts/kafka.sh status    exit 0 when the recorded broker is alive and answers
# Cluster mode (node N in 1..3 listens on $KAFKA_CLUSTER_PORT + 2(N-1), its controller on the
# next port; replication 3, min.insync.replicas 2; see scripts/kafka-cluster.sh):
#   scripts/kafka.sh cluster-start       format 3 fresh log dirs (one cluster id), start, wait
#                                        until every node is registered and the quorum has a leader
#   scripts/kafka.sh cluster-stop        stop the 3 nodes (recorded PIDs only), remove their dirs
#   scripts/kafka.sh cluster-status      exit 0 when all 3 nodes are alive and registered
#   scripts/kafka.sh cluster-bootstrap   print the bootstrap list host:port,host:port,host:port
#   scripts/kafka.sh cluster-kill N      kill -9 node N (its log dir is kept)
#   scripts/kafka.sh cluster-restart N   (stop and) start node N on its log dir, wait until registered
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
home="$root/.kafka"
libs="$home/libs"
run="$home/run"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-$((port + 1))}"
heap="${KAFKA_HEAP:-512m}"
pidfile="$run/broker-$port.pid"
dirfile="$run/broker-$port.dir"

java_cp() { echo "$libs/*"; }

install() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  mkdir -p "$libs"
  mvn -q -B -f "$root/scripts/kafka-pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs"
  touch "$libs/.complete"
  echo "kafka: installed $(ls "$libs" | grep -c jar) jars into $libs"
}

answers() {
  java -Xmx128m -cp "$(java_cp)" -Dlog4j2.configurationFile="$run/log4j2-tools.properties" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$port" >/dev/null 2>&1
}

alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

write_config() {
  local logdir="$1"
  cat >"$logdir/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$logdir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
auto.create.topics.enable=true
CONF
  cat >"$run/log4j2.properties" <<CONF
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$logdir/broker.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
CONF
  cat >"$run/log4j2-tools.properties" <<CONF
rootLogger.level=OFF
CONF
}

start() {
  install
  mkdir -p "$run"
  if alive; then echo "kafka: already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
  local logdir
  logdir="$(mktemp -d "${TMPDIR:-/tmp}/tabstream-kafka-$port.XXXXXX")"
  write_config "$logdir"
  local cluster
  cluster="$(java -Xmx128m -cp "$(java_cp)" -Dlog4j2.configurationFile="$run/log4j2-tools.properties" \
    kafka.tools.StorageTool random-uuid)"
  java -Xmx256m -cp "$(java_cp)" -Dlog4j2.configurationFile="$run/log4j2-tools.properties" \
    kafka.tools.StorageTool format -t "$cluster" -c "$logdir/server.properties" >/dev/null
  nohup java -Xms256m -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Dlog4j2.configurationFile="$run/log4j2.properties" \
    -cp "$(java_cp)" kafka.Kafka "$logdir/server.properties" >"$logdir/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  echo "$logdir" >"$dirfile"
  for _ in $(seq 1 120); do
    if answers; then echo "kafka: up on 127.0.0.1:$port (pid $(cat "$pidfile"), logs $logdir)"; return 0; fi
    if ! alive; then echo "kafka: broker exited; see $logdir/stdout.log" >&2; tail -20 "$logdir/stdout.log" >&2; return 1; fi
    sleep 0.5
  done
  echo "kafka: no metadata answer from 127.0.0.1:$port after 60 s" >&2
  return 1
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
  echo "kafka: stopped (port $port)"
}

status() {
  if alive && answers; then echo "kafka: running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
  echo "kafka: not running on 127.0.0.1:$port"; return 1
}

# shellcheck source=scripts/kafka-cluster.sh
. "$root/scripts/kafka-cluster.sh"

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  cluster-start) cluster_start ;;
  cluster-stop) cluster_stop ;;
  cluster-status) cluster_status ;;
  cluster-bootstrap) cluster_bootstrap ;;
  cluster-kill) cluster_kill "${2:-}" ;;
  cluster-restart) cluster_restart "${2:-}" ;;
  *) echo "usage: $0 install|start|stop|status|cluster-start|cluster-stop|cluster-status|cluster-bootstrap|cluster-kill N|cluster-restart N" >&2; exit 2 ;;
esac
