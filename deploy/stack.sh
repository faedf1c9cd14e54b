#!/usr/bin/env bash
# Local test stack for kbr: real ZooKeeper, a 3-broker ZooKeeper-mode Kafka 3.9.1 cluster and a
# single-node KRaft Kafka 4.1.1, all as plain JVM processes on 127.0.0.1 (no Docker here).
#
#   deploy/stack.sh up                  start whatever is not running, wait until ready, write stack.env
#   deploy/stack.sh up --kafka-only     only ZooKeeper and the ZooKeeper-mode Kafka cluster (what
#                                       `make run`'s demo needs): no KRaft node, no storage servers
#   deploy/stack.sh down [--wipe]       stop everything (data kept; --wipe also deletes it)
#   deploy/stack.sh clean               same as down --wipe
#   deploy/stack.sh status              one line per process; exit 1 unless all are running
#   deploy/stack.sh broker-stop NAME    NAME: zk1 zk2 zk3 kraft1; returns when the process is gone
#   deploy/stack.sh broker-start NAME   returns when the broker answers and is registered
#   deploy/stack.sh zk-stop | zk-start
#   deploy/stack.sh logs NAME [-f] [-n N]   NAME: zk zk1 zk2 zk3 kraft1
#   deploy/stack.sh env                 stack.env as shell-quoted exports: eval "$(deploy/stack.sh env)"
#
# Everything lives under deploy/local/ (git-ignored). Environment overrides:
#   KBR_STACK_TIMEOUT  readiness timeout in seconds (default 90)
set -euo pipefail

DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOCAL=$DEPLOY_DIR/local
LIB=$LOCAL/lib
SELF=$DEPLOY_DIR/stack.sh
ENV_FILE=$LOCAL/stack.env

TIMEOUT=${KBR_STACK_TIMEOUT:-90}
STOP_TIMEOUT=30

ZK_PORT=12181
ZK_CONNECT=127.0.0.1:$ZK_PORT
ZK_CHROOT=/kafka39
ZKMODE_VERSION=3.9.1
KRAFT_VERSION=4.1.1
# Fixed so the KRaft log dir survives restarts and tests can rely on it: base64url("kbr-kraft-stack1").
KRAFT_CLUSTER_ID=a2JyLWtyYWZ0LXN0YWNrMQ

ZK_BROKERS=(zk1 zk2 zk3)
ALL_BROKERS=(zk1 zk2 zk3 kraft1)

declare -A BROKER_ID=([zk1]=1 [zk2]=2 [zk3]=3 [kraft1]=1)
declare -A BROKER_PORT=([zk1]=19092 [zk2]=19093 [zk3]=19094 [kraft1]=29092)
KRAFT_CONTROLLER_PORT=29093
ZKMODE_BOOTSTRAP=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094
KRAFT_BOOTSTRAP=127.0.0.1:29092

# ZooKeeper from Debian: zookeeper.jar's manifest Class-Path pulls in its own dependencies; we add
# exactly one slf4j binding (log4j 1.2) so it logs to our file instead of warning.
ZK_CLASSPATH=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar

APT_PACKAGES=(zookeeper kcat netcat-openbsd libslf4j-java liblog4j1.2-java)

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# helpers

log_dirs_of() {
  # Broker zk1 has two log dirs so multi-log-dir code paths are exercised for real.
  case $1 in
    zk1) echo "$LOCAL/zk1/data/data-a,$LOCAL/zk1/data/data-b" ;;
    *)   echo "$LOCAL/$1/data" ;;
  esac
}

server_log_of() {
  case $1 in
    zk) echo "$LOCAL/zk/zookeeper.log" ;;
    *)  echo "$LOCAL/$1/server.log" ;;
  esac
}

valid_broker() {
  local n
  for n in "${ALL_BROKERS[@]}"; do [[ $n == "${1:-}" ]] && return 0; done
  die "unknown broker '${1:-}' (one of: ${ALL_BROKERS[*]})"
}

# pid_of NAME: prints the pid if NAME's process is alive. The pid file alone is not trusted (pids
# get reused): the process' command line must carry our -Dkbr.stack=<dir> marker. Zombies have an
# empty cmdline, so they count as gone.
pid_of() {
  local f=$LOCAL/$1/pid pid cmdline
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"-Dkbr.stack=$LOCAL/$1 "* ]] || return 1
  echo "$pid"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# port_busy PORT: the port still answers after 15 s. A process that has just
# exited can hold its listening socket for a moment after /proc/<pid>/cmdline
# is gone (the kernel frees its memory before its files), so wait it out.
port_busy() {
  local i
  for ((i = 0; i < 30; i++)); do
    port_open "$1" || return 1
    sleep 0.5
  done
  return 0
}

# ruok -> imok. Bash's /dev/tcp rather than `nc`: nc sometimes hangs up before reading the
# answer (about 1 in 30 tries here) and returns nothing.
zk_ok() {
  [[ $(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf ruok >&3 && cat <&3' "$ZK_PORT" 2>/dev/null) == imok ]]
}

# zk_4lw CMD: a ZooKeeper four-letter-word command's answer.
zk_4lw() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf %s "$1" >&3 && cat <&3' "$ZK_PORT" "$1" 2>/dev/null
}

# A broker that was SIGKILLed leaves its ephemeral /brokers/ids/N behind until its ZooKeeper
# session expires (zookeeper.session.timeout.ms, 18 s); a new broker with that id started before
# then dies with "node already exists". Our process is not running, so any such node is stale.
wait_stale_registration() {
  local name=$1 node="$ZK_CHROOT/brokers/ids/${BROKER_ID[$1]}"
  local deadline=$((SECONDS + TIMEOUT)) said=
  # (the answer goes through a variable: `grep -q` in a pipe + pipefail can report SIGPIPE)
  while [[ $'\n'"$(zk_4lw dump)"$'\n' == *$'\n\t'"$node"$'\n'* ]]; do
    [[ $said ]] || { log "$name: waiting for the stale ZooKeeper registration $node to expire"; said=1; }
    ((SECONDS < deadline)) || die "$name: $node still registered after ${TIMEOUT}s"
    sleep 1
  done
}

# broker_registered NAME: the broker answers metadata, lists itself, and sees every broker of its
# cluster whose process runs (all 3 after `up`; fewer while a test keeps some stopped).
broker_registered() {
  local name=$1 want=1 md n
  if [[ $name != kraft1 ]]; then
    want=0
    for n in "${ZK_BROKERS[@]}"; do pid_of "$n" >/dev/null && want=$((want + 1)); done
  fi
  md=$(timeout 10 kcat -L -b "127.0.0.1:${BROKER_PORT[$name]}" -m 5 2>/dev/null) || return 1
  grep -qE "^ *$want brokers:" <<<"$md" || return 1
  grep -qE "broker ${BROKER_ID[$name]} at 127\.0\.0\.1:${BROKER_PORT[$name]}" <<<"$md"
}

show_logs() {
  local name=$1 f
  for f in "$(server_log_of "$name")" "$LOCAL/$name/stdout.log"; do
    [[ -s $f ]] || continue
    printf '\n----- last 60 lines of %s -----\n' "$f" >&2
    tail -n 60 "$f" >&2
  done
}

# wait_for NAME DESCRIPTION CHECK...: polls CHECK until it succeeds; fails early if the process died.
wait_for() {
  local name=$1 what=$2; shift 2
  local deadline=$((SECONDS + TIMEOUT))
  while ! "$@"; do
    if ! pid_of "$name" >/dev/null; then
      log "$name exited while waiting for: $what"
      show_logs "$name"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name: timed out after ${TIMEOUT}s waiting for: $what"
      show_logs "$name"
      exit 1
    fi
    sleep 0.5
  done
}

# launch NAME CMD...: starts CMD detached in its own session, stdout/stderr appended to
# NAME/stdout.log. The child writes its own pid before exec, so the pid file is right whether or
# not setsid had to fork.
launch() {
  local name=$1; shift
  local dir=$LOCAL/$name
  mkdir -p "$dir"
  rm -f "$dir/pid"
  printf '===== %s starting: %s\n' "$(date -Is)" "$*" >>"$dir/stdout.log"
  # 9>&- : the JVM must not inherit the stack lock, or the next `up` would wait for it forever.
  # Many open files: a broker keeps a few per partition, and the tests hold
  # tens of thousands of partitions (raised as far as this user may).
  setsid bash -c 'ulimit -n 262144 2>/dev/null || ulimit -n "$(ulimit -Hn)"; echo $$ >"$0"; exec "$@"' "$dir/pid" "$@" </dev/null >>"$dir/stdout.log" 2>&1 9>&- &
  local i
  for i in $(seq 50); do [[ -s $dir/pid ]] && break; sleep 0.1; done
  [[ -s $dir/pid ]] || die "$name: no pid file after launch"
  log "$name started (pid $(<"$dir/pid"))"
}

stop_proc() {
  local name=$1 pid i
  if ! pid=$(pid_of "$name"); then
    rm -f "$LOCAL/$name/pid"
    log "$name not running"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    pid_of "$name" >/dev/null || break
    sleep 0.1
  done
  if pid_of "$name" >/dev/null; then
    log "$name did not stop within ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while pid_of "$name" >/dev/null; do sleep 0.1; done
  fi
  rm -f "$LOCAL/$name/pid"
  log "$name stopped"
}

# Serialise commands that change the stack (two `up`s at once would start duplicate JVMs).
take_lock() {
  mkdir -p "$LOCAL"
  exec 9>"$LOCAL/.lock"
  flock 9
}

# ---------------------------------------------------------------------------------------------
# prerequisites

ensure_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == 'install ok installed' ]] || missing+=("$p")
  done
  command -v java >/dev/null || missing+=(default-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  ((${#missing[@]} == 0)) && return 0
  log "installing missing packages: ${missing[*]}"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  # apt-get update only when something is actually missing: keeps a warm `up` offline and fast.
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

check_java() {
  # Kafka 4.x brokers need Java 17+.
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [[ ${v%%.*} =~ ^[0-9]+$ ]] && ((${v%%.*} >= 17)) || die "Java 17+ required, found '${v:-unknown}'"
}

# resolve_jars NAME: copies the runtime jars of deploy/maven/NAME/pom.xml into deploy/local/lib/NAME.
# A stamp holding the pom's checksum marks a complete copy; a changed pom triggers a fresh copy.
resolve_jars() {
  local name=$1
  local pom=$DEPLOY_DIR/maven/$name/pom.xml dest=$LIB/$name
  local sum
  sum=$(sha256sum "$pom" | cut -d' ' -f1)
  [[ -f $dest/.complete && $(<"$dest/.complete") == "$sum" ]] && return 0
  if [[ -d $dest ]]; then
    # Swapping jars under running JVMs breaks their lazy class loading.
    local n
    for n in "${ALL_BROKERS[@]}"; do
      [[ $n == kraft1 && $name == kafka4 || $n != kraft1 && $name == kafka39 ]] || continue
      pid_of "$n" >/dev/null && die "$pom changed while $n runs; run deploy/stack.sh down first"
    done
  fi
  log "resolving jars for $name (Maven)"
  mkdir -p "$LIB"
  local tmp=$LIB/.$name.tmp
  rm -rf "$tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" >"$LIB/mvn-$name.log" 2>&1; then
    cat "$LIB/mvn-$name.log" >&2
    die "maven could not resolve $pom"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka_2.13 jar in $tmp"
  # Copy into a temp dir and swap, so a half-finished copy never looks complete.
  rm -rf "$dest"
  mv "$tmp" "$dest"
  echo "$sum" >"$dest/.complete"
}

# ---------------------------------------------------------------------------------------------
# configuration (regenerated on every start; data dirs are never touched here)

write_zk_config() {
  local dir=$LOCAL/zk
  mkdir -p "$dir/data"
  cat >"$dir/zoo.cfg" <<EOF
# generated by deploy/stack.sh
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
# no Jetty admin server (it would grab port 8080); 4-letter words for ruok/stat/dump
admin.enableServer=false
4lw.commands.whitelist=*
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
EOF
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$dir/zookeeper.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n
EOF
}

write_zkmode_broker_config() {
  local name=$1 dir=$LOCAL/$1 port=${BROKER_PORT[$1]} d dirs
  mkdir -p "$dir"
  IFS=, read -ra dirs <<<"$(log_dirs_of "$name")"
  for d in "${dirs[@]}"; do mkdir -p "$d"; done
  cat >"$dir/server.properties" <<EOF
# generated by deploy/stack.sh - ZooKeeper-mode Kafka $ZKMODE_VERSION broker $name
broker.id=${BROKER_ID[$name]}
listeners=PLAINTEXT://127.0.0.1:$port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
zookeeper.connect=$ZK_CONNECT$ZK_CHROOT
zookeeper.connection.timeout.ms=18000
zookeeper.session.timeout.ms=18000
log.dirs=$(log_dirs_of "$name")

auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
offsets.topic.replication.factor=3
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0
log.cleaner.backoff.ms=1000
# a deleted topic's files (and open file handles) go after 1 s, not 60:
# the scale test deletes 20,000 partitions and then creates 20,000
log.segment.delete.delay.ms=1000

# real ACLs (so ACL backups have something to read) without locking anyone out
authorizer.class.name=kafka.security.authorizer.AclAuthorizer
allow.everyone.if.no.acl.found=true
super.users=User:ANONYMOUS

# 1 MiB records (plus batch overhead) must pass, also between replicas
message.max.bytes=4194304
replica.fetch.max.bytes=4194304

# the last broker to stop has nowhere to move leaders: retry its controlled shutdown quickly
controlled.shutdown.retry.backoff.ms=1000

# four brokers share 2 cores: fewer threads than the defaults
num.network.threads=2
num.io.threads=4
num.replica.fetchers=1
background.threads=4
EOF
  write_log4j1 "$name"
}

write_log4j1() {
  local dir=$LOCAL/$1
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.zookeeper=INFO
log4j.logger.kafka.authorizer.logger=INFO
EOF
}

write_kraft_config() {
  local name=kraft1 dir=$LOCAL/kraft1 port=${BROKER_PORT[kraft1]}
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
# generated by deploy/stack.sh - KRaft Kafka $KRAFT_VERSION, combined broker+controller
process.roles=broker,controller
node.id=${BROKER_ID[$name]}
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$KRAFT_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$KRAFT_CONTROLLER_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$KRAFT_CONTROLLER_PORT
log.dirs=$(log_dirs_of "$name")

auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.backoff.ms=1000

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=true
super.users=User:ANONYMOUS

message.max.bytes=4194304
replica.fetch.max.bytes=4194304

num.network.threads=2
num.io.threads=4
background.threads=4
EOF
  cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $dir/server.log
appender.file.filePattern = $dir/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

# ---------------------------------------------------------------------------------------------
# processes

JVM_COMMON=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true)

start_zk() {
  if pid_of zk >/dev/null; then
    wait_for zk "ruok -> imok on $ZK_CONNECT" zk_ok
    return 0
  fi
  port_busy "$ZK_PORT" && die "port $ZK_PORT is taken by a process that is not this stack's ZooKeeper"
  write_zk_config
  local dir=$LOCAL/zk
  launch zk java -Xmx256m "${JVM_COMMON[@]}" "-Dkbr.stack=$dir" \
    "-Dlog4j.configuration=file:$dir/log4j.properties" "-Dzookeeper.log.dir=$dir" \
    -cp "$dir:$ZK_CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg"
  wait_for zk "ruok -> imok on $ZK_CONNECT" zk_ok
  log "zk ready on $ZK_CONNECT"
}

# launch_broker NAME: starts the broker's JVM unless it runs already; does not wait.
launch_broker() {
  local name=$1 dir=$LOCAL/$1 port=${BROKER_PORT[$1]}
  pid_of "$name" >/dev/null && return 0
  port_busy "$port" && die "port $port is taken by a process that is not this stack's $name"
  if [[ $name == kraft1 ]]; then
    port_busy "$KRAFT_CONTROLLER_PORT" && die "port $KRAFT_CONTROLLER_PORT is taken"
    write_kraft_config
    format_kraft
    launch "$name" java -Xmx1g -Xms512m "${JVM_COMMON[@]}" "-Dkbr.stack=$dir" \
      "-Dlog4j2.configurationFile=file:$dir/log4j2.properties" "-Dkafka.logs.dir=$dir" \
      -cp "$LIB/kafka4/*" kafka.Kafka "$dir/server.properties"
  else
    pid_of zk >/dev/null && zk_ok || die "ZooKeeper is not running; start it first (deploy/stack.sh zk-start or up)"
    wait_stale_registration "$name"
    write_zkmode_broker_config "$name"
    launch "$name" java -Xmx1g -Xms512m "${JVM_COMMON[@]}" "-Dkbr.stack=$dir" \
      "-Dlog4j.configuration=file:$dir/log4j.properties" "-Dkafka.logs.dir=$dir" \
      -cp "$LIB/kafka39/*" kafka.Kafka "$dir/server.properties"
  fi
}

# KRaft log dirs must be formatted once (cluster id + the single voter) before the first start.
format_kraft() {
  local dir=$LOCAL/kraft1
  [[ -f $dir/data/meta.properties ]] && return 0
  log "formatting KRaft storage (cluster id $KRAFT_CLUSTER_ID)"
  if ! java -Xmx256m "-Dlog4j2.configurationFile=file:$dir/log4j2.properties" \
      -cp "$LIB/kafka4/*" kafka.tools.StorageTool format --cluster-id "$KRAFT_CLUSTER_ID" \
      --config "$dir/server.properties" --standalone --ignore-formatted >"$dir/format.log" 2>&1; then
    cat "$dir/format.log" >&2
    die "formatting KRaft storage failed"
  fi
}

wait_broker() {
  local name=$1 port=${BROKER_PORT[$1]}
  wait_for "$name" "port 127.0.0.1:$port" port_open "$port"
  wait_for "$name" "broker registered (kcat -L on 127.0.0.1:$port)" broker_registered "$name"
  log "$name ready on 127.0.0.1:$port"
}

write_env() {
  local tmp=$ENV_FILE.tmp n N
  {
    echo "# written by deploy/stack.sh up; KEY=value, values are not quoted (some contain spaces)."
    echo "# From a shell use: eval \"\$(deploy/stack.sh env)\""
    echo "KBR_STACK_DIR=$LOCAL"
    echo "KBR_STACK_SH=$SELF"
    echo "KBR_ZK_CONNECT=$ZK_CONNECT"
    echo "KBR_ZK_CHROOT=$ZK_CHROOT"
    echo "KBR_ZK_STOP=$SELF zk-stop"
    echo "KBR_ZK_START=$SELF zk-start"
    echo "KBR_ZKMODE_BOOTSTRAP=$ZKMODE_BOOTSTRAP"
    echo "KBR_ZKMODE_VERSION=$ZKMODE_VERSION"
    echo "KBR_KRAFT_BOOTSTRAP=$KRAFT_BOOTSTRAP"
    echo "KBR_KRAFT_VERSION=$KRAFT_VERSION"
    echo "KBR_KRAFT_CLUSTER_ID=$KRAFT_CLUSTER_ID"
    for n in "${ALL_BROKERS[@]}"; do
      N=${n^^}
      echo "KBR_BROKER_${N}_ID=${BROKER_ID[$n]}"
      echo "KBR_BROKER_${N}_ADDR=127.0.0.1:${BROKER_PORT[$n]}"
      echo "KBR_BROKER_${N}_PROPERTIES=$LOCAL/$n/server.properties"
      echo "KBR_BROKER_${N}_LOG_DIRS=$(log_dirs_of "$n")"
      echo "KBR_BROKER_${N}_STOP=$SELF broker-stop $n"
      echo "KBR_BROKER_${N}_START=$SELF broker-start $n"
    done
    # Storage servers (deploy/services/*.sh) describe themselves in services/<name>.env.
    local f
    for f in "$LOCAL"/services/*.env; do
      [[ -f $f ]] && cat "$f"
    done
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
}

# Every deploy/services/<name>.sh takes up|down|wipe. `up` is idempotent, waits until its server
# answers, and writes KEY=value lines to $KBR_STACK_DIR/services/<name>.env.
services() {
  local action=$1 f
  mkdir -p "$LOCAL/services"
  for f in "$DEPLOY_DIR"/services/*.sh; do
    [[ -f $f ]] || continue
    KBR_STACK_DIR=$LOCAL bash "$f" "$action" || die "service $(basename "$f" .sh): $action failed"
  done
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_up() {
  local only=
  case ${1:-} in
    '') ;;
    --kafka-only) only=kafka ;;
    *) die "usage: stack.sh up [--kafka-only]" ;;
  esac
  take_lock
  ensure_packages
  check_java
  resolve_jars kafka39
  [[ $only ]] || resolve_jars kafka4
  # Launch every JVM before waiting for any: they start in parallel. The KRaft node needs no
  # ZooKeeper, so it (and its one-off storage format) goes first.
  local n brokers=("${ALL_BROKERS[@]}")
  [[ $only ]] && brokers=("${ZK_BROKERS[@]}")
  [[ $only ]] || launch_broker kraft1
  start_zk
  for n in "${ZK_BROKERS[@]}"; do launch_broker "$n"; done
  for n in "${brokers[@]}"; do wait_broker "$n"; done
  if [[ $only ]]; then
    log "--kafka-only: KRaft node and storage servers not started (deploy/stack.sh up starts them)"
  else
    services up
  fi
  write_env
  if [[ $only ]]; then
    log "stack is up: ZooKeeper $ZK_CONNECT (chroot $ZK_CHROOT), Kafka $ZKMODE_VERSION $ZKMODE_BOOTSTRAP"
  else
    log "stack is up: ZooKeeper $ZK_CONNECT (chroot $ZK_CHROOT), Kafka $ZKMODE_VERSION $ZKMODE_BOOTSTRAP, Kafka $KRAFT_VERSION (KRaft) $KRAFT_BOOTSTRAP"
  fi
  log "env: $ENV_FILE"
}

cmd_down() {
  local wipe=${1:-}
  [[ -z $wipe || $wipe == --wipe ]] || die "usage: stack.sh down [--wipe]"
  [[ -d $LOCAL ]] || { log "nothing to stop"; return 0; }
  take_lock
  # Brokers before ZooKeeper: ZooKeeper-mode brokers need it for a clean controlled shutdown.
  # One at a time, so each controlled shutdown can move leadership to a live broker.
  local n
  services down
  for n in kraft1 zk3 zk2 zk1 zk; do stop_proc "$n"; done
  if [[ $wipe == --wipe ]]; then
    services wipe
    log "wiping data under $LOCAL (keeping lib/)"
    for n in zk "${ALL_BROKERS[@]}"; do rm -rf "${LOCAL:?}/$n"; done
    rm -f "$ENV_FILE"
  fi
}

cmd_status() {
  local n pid state rc=0 addr
  for n in zk "${ALL_BROKERS[@]}"; do
    if [[ $n == zk ]]; then addr=$ZK_CONNECT; else addr=127.0.0.1:${BROKER_PORT[$n]}; fi
    if pid=$(pid_of "$n"); then
      state=running
      if [[ $n == zk ]]; then zk_ok || state="running (not answering ruok)"
      else broker_registered "$n" || state="running (not registered / cluster incomplete)"; fi
    else
      pid=- state=stopped rc=1
    fi
    printf '%-7s %-22s pid %-8s %s\n' "$n" "$addr" "$pid" "$state"
  done
  return $rc
}

cmd_broker_stop() {
  valid_broker "${1:-}"
  take_lock
  stop_proc "$1"
}

cmd_broker_start() {
  valid_broker "${1:-}"
  take_lock
  if [[ $1 == kraft1 ]]; then resolve_jars kafka4; else resolve_jars kafka39; fi
  launch_broker "$1"
  wait_broker "$1"
}

cmd_zk_stop() { take_lock; stop_proc zk; }
cmd_zk_start() { take_lock; start_zk; }

cmd_logs() {
  local name=${1:-} follow=() lines=100
  [[ $name == zk ]] || valid_broker "$name"
  shift
  while (($#)); do
    case $1 in
      -f) follow=(-F) ;;
      -n) lines=$2; shift ;;
      *) die "usage: stack.sh logs NAME [-f] [-n N]" ;;
    esac
    shift
  done
  local f
  f=$(server_log_of "$name")
  [[ -e $f ]] || die "no log yet: $f"
  tail -n "$lines" "${follow[@]}" "$f"
}

cmd_env() {
  [[ -f $ENV_FILE ]] || die "$ENV_FILE missing; run deploy/stack.sh up"
  local k v
  while IFS='=' read -r k v; do
    [[ $k =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
    printf 'export %s=%q\n' "$k" "$v"
  done <"$ENV_FILE"
}

usage() {
  sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    clean) cmd_down --wipe ;;
    status) cmd_status ;;
    broker-stop) cmd_broker_stop "$@" ;;
    broker-start) cmd_broker_start "$@" ;;
    zk-stop) cmd_zk_stop ;;
    zk-start) cmd_zk_start ;;
    logs) cmd_logs "$@" ;;
    env) cmd_env ;;
    *) usage ;;
  esac
}

main "$@"
