# Cluster mode of scripts/kafka.sh (sourced by it; not run alone): 3 KRaft nodes on 127.0.0.1,
# each a broker and one of the 3 controller voters. Node N (1..3) has node.id N, its client
# listener on $KAFKA_CLUSTER_PORT + 2(N-1) and its controller listener on the port after it.
# Topics get replication factor 3 and min.insync.replicas 2, so acks=all producers keep going
# with one node down. Small heaps ($KAFKA_CLUSTER_HEAP each): the three fit a 2-core laptop.
cbase="${KAFKA_CLUSTER_PORT:-19700}"
cheap="${KAFKA_CLUSTER_HEAP:-320m}"
crun="$run/cluster-$cbase"
cnodes=(1 2 3)

node_port() { echo $((cbase + 2 * ($1 - 1))); }
node_controller_port() { echo $(($(node_port "$1") + 1)); }
node_pidfile() { echo "$crun/node-$1.pid"; }
node_alive() { local f; f="$(node_pidfile "$1")"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
cluster_dir() { cat "$crun/dir" 2>/dev/null; }

cluster_bootstrap() {
  local n list=()
  for n in "${cnodes[@]}"; do list+=("127.0.0.1:$(node_port "$n")"); done
  (IFS=,; echo "${list[*]}")
}

cluster_tool() {
  java -Xmx128m -cp "$(java_cp)" -Dlog4j2.configurationFile="$crun/log4j2-tools.properties" "$@"
}

# How many brokers the metadata of $1 (a bootstrap list) shows: only unfenced ones appear.
registered() {
  cluster_tool org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$1" 2>/dev/null | grep -c '(id: ' || true
}

# The controller quorum has a leader and all 3 voters.
quorum_ready() {
  local out
  out="$(cluster_tool org.apache.kafka.tools.MetadataQuorumCommand \
    --bootstrap-server "$(cluster_bootstrap)" describe --status 2>/dev/null)" || return 1
  echo "$out" | grep -Eq '^LeaderId:[[:space:]]+[1-3]$' || return 1
  [ "$(echo "$out" | grep '^CurrentVoters:' | grep -o '"id": *[0-9]*' | wc -l)" -eq 3 ]
}

write_node_config() {
  local n="$1" dir="$2" voters="" m
  for m in "${cnodes[@]}"; do voters+="${voters:+,}$m@127.0.0.1:$(node_controller_port "$m")"; done
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<CONF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(node_port "$n"),CONTROLLER://127.0.0.1:$(node_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
auto.create.topics.enable=true
num.network.threads=2
num.io.threads=2
background.threads=4
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
replica.lag.time.max.ms=10000
CONF
  cat >"$dir/log4j2.properties" <<CONF
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$dir/broker.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
CONF
}

launch_node() {
  local n="$1" dir; dir="$(cluster_dir)/node-$1"
  nohup java -Xms128m -Xmx"$cheap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$(java_cp)" kafka.Kafka "$dir/server.properties" >>"$dir/stdout.log" 2>&1 &
  echo $! >"$(node_pidfile "$n")"
}

# Until the metadata served by $1 (a bootstrap list) shows all 3 nodes unfenced (and, with
# $2 = quorum, the controller quorum has a leader and 3 voters); 1 after $3 s. After a
# restart $1 is the restarted node alone: a node killed -9 stays registered until its session
# expires, but its new incarnation serves metadata only once caught up, and shows itself only
# once unfenced.
wait_cluster() {
  local via="$1" what="$2" limit="$3" start=$SECONDS n
  while [ $((SECONDS - start)) -lt "$limit" ]; do
    for n in "${cnodes[@]}"; do
      if ! node_alive "$n"; then
        echo "kafka cluster: node $n exited; see $(cluster_dir)/node-$n/stdout.log" >&2
        tail -20 "$(cluster_dir)/node-$n/stdout.log" >&2
        return 1
      fi
    done
    if [ "$(registered "$via")" -eq 3 ] && { [ "$what" != quorum ] || quorum_ready; }; then
      return 0
    fi
    sleep 0.5
  done
  echo "kafka cluster: not all 3 nodes registered after $limit s" >&2
  return 1
}

cluster_start() {
  install
  mkdir -p "$crun"
  echo "rootLogger.level=OFF" >"$crun/log4j2-tools.properties"
  local n alive=0
  for n in "${cnodes[@]}"; do node_alive "$n" && alive=$((alive + 1)); done
  if [ "$alive" -eq 3 ]; then echo "kafka cluster: already running on $(cluster_bootstrap)"; return 0; fi
  if [ "$alive" -gt 0 ] || [ -n "$(cluster_dir)" ]; then cluster_stop >/dev/null; mkdir -p "$crun"; fi
  echo "rootLogger.level=OFF" >"$crun/log4j2-tools.properties"
  local dir cluster
  dir="$(mktemp -d "${TMPDIR:-/tmp}/tabstream-kafka-cluster-$cbase.XXXXXX")"
  echo "$dir" >"$crun/dir"
  cluster="$(cluster_tool kafka.tools.StorageTool random-uuid)"
  for n in "${cnodes[@]}"; do
    write_node_config "$n" "$dir/node-$n"
    cluster_tool kafka.tools.StorageTool format -t "$cluster" \
      -c "$dir/node-$n/server.properties" >/dev/null &
  done
  wait
  for n in "${cnodes[@]}"; do launch_node "$n"; done
  if wait_cluster "$(cluster_bootstrap)" quorum 120; then
    echo "kafka cluster: up on $(cluster_bootstrap) (id $cluster, logs $dir)"; return 0
  fi
  return 1
}

stop_node() {
  local f pid; f="$(node_pidfile "$1")"
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cluster_stop() {
  local n
  for n in "${cnodes[@]}"; do stop_node "$n" & done
  wait
  local dir; dir="$(cluster_dir)"
  if [ -n "$dir" ]; then rm -rf "$dir"; fi
  rm -rf "$crun"
  echo "kafka cluster: stopped ($(cluster_bootstrap))"
}

cluster_status() {
  local n
  for n in "${cnodes[@]}"; do
    if ! node_alive "$n"; then echo "kafka cluster: node $n not running"; return 1; fi
  done
  if [ "$(registered "$(cluster_bootstrap)")" -eq 3 ]; then echo "kafka cluster: running on $(cluster_bootstrap)"; return 0; fi
  echo "kafka cluster: not all 3 nodes registered on $(cluster_bootstrap)"; return 1
}

check_node() {
  case "$1" in 1 | 2 | 3) ;; *) echo "kafka cluster: node must be 1, 2 or 3, got '$1'" >&2; exit 2 ;; esac
  if [ -z "$(cluster_dir)" ]; then echo "kafka cluster: not started on $cbase" >&2; exit 1; fi
}

cluster_kill() {
  check_node "$1"
  local f pid; f="$(node_pidfile "$1")"
  if [ -f "$f" ] && pid="$(cat "$f")" && kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  echo "kafka cluster: node $1 killed (127.0.0.1:$(node_port "$1"))"
}

cluster_restart() {
  check_node "$1"
  stop_node "$1"
  launch_node "$1"
  if wait_cluster "127.0.0.1:$(node_port "$1")" registered 90; then
    echo "kafka cluster: node $1 back on 127.0.0.1:$(node_port "$1")"; return 0
  fi
  return 1
}
