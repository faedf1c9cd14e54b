#!/usr/bin/env bash
# Single-node HDFS (Apache Hadoop 3.4.1) for kbr's LocalHDFS/RemoteHDFS backends: one NameNode and
# one DataNode as plain JVM processes on 127.0.0.1, run by deploy/stack.sh (services up|down|wipe).
#
#   hdfs.sh up        resolve jars, format once, start what is not running, wait until the
#                     NameNode is out of safe mode with one live DataNode, write
#                     STACK_DIR/services/hdfs.env
#   hdfs.sh down      stop both; returns when the processes are gone (data kept)
#   hdfs.sh wipe      down, then delete the HDFS data and configuration (jars kept)
#   hdfs.sh nn-stop   stop the NameNode only (the DataNode keeps retrying); returns when it is gone
#   hdfs.sh nn-start  start the NameNode (and the DataNode if it is not running); returns when
#                     HDFS is ready again
#   hdfs.sh status    one line per process; exit 1 unless both run
#   hdfs.sh logs nn|dn [-n N]   tail a daemon log
#
# Every command but logs takes [STACK_DIR [PORT_OFFSET]]. STACK_DIR defaults to $KBR_STACK_DIR,
# else deploy/local. Ports, all bound to 127.0.0.1: NameNode RPC 18020, HTTP 19870; DataNode
# transfer 19866, HTTP 19864, IPC 19867 (and unused 19865, 19868-19873), each plus PORT_OFFSET
# (default $KBR_HDFS_PORT_OFFSET, else 0: a second instance, e.g. to time a cold start beside
# the running one). Permissions are on; the NameNode runs as the OS user (the HDFS superuser);
# the unprivileged user kbr owns /user/kbr, where tests put their files. Readiness timeout:
# KBR_HDFS_TIMEOUT, else KBR_STACK_TIMEOUT, else 120 seconds.
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POM=$DEPLOY_DIR/maven/hadoop/pom.xml

HADOOP_VERSION=3.4.1
set_ports() {
  PORT_OFFSET=$1
  NN_RPC_PORT=$((18020 + PORT_OFFSET))
  NN_HTTP_PORT=$((19870 + PORT_OFFSET))
  NN_HTTPS_PORT=$((19871 + PORT_OFFSET))
  SNN_HTTP_PORT=$((19868 + PORT_OFFSET))
  SNN_HTTPS_PORT=$((19869 + PORT_OFFSET))
  BACKUP_PORT=$((19872 + PORT_OFFSET))
  BACKUP_HTTP_PORT=$((19873 + PORT_OFFSET))
  DN_XFER_PORT=$((19866 + PORT_OFFSET))
  DN_HTTP_PORT=$((19864 + PORT_OFFSET))
  DN_HTTPS_PORT=$((19865 + PORT_OFFSET))
  DN_IPC_PORT=$((19867 + PORT_OFFSET))
}
set_ports "${KBR_HDFS_PORT_OFFSET:-0}"
HDFS_USER=kbr
HDFS_HOME=/user/$HDFS_USER
SUPERUSER=$(id -un)
CLUSTER_ID=CID-kbr-stack

TIMEOUT=${KBR_HDFS_TIMEOUT:-${KBR_STACK_TIMEOUT:-120}}
STOP_TIMEOUT=30

log() { printf '[hdfs] %s\n' "$*" >&2; }
die() { printf '[hdfs] ERROR: %s\n' "$*" >&2; exit 1; }

set_dirs() {
  LOCAL=${1:-${KBR_STACK_DIR:-$DEPLOY_DIR/local}}
  mkdir -p "$LOCAL"
  LOCAL=$(cd "$LOCAL" && pwd)
  LIB=$LOCAL/lib/hadoop
  DIR=$LOCAL/hdfs
  CONF=$DIR/conf
  ENV_OUT=$LOCAL/services/hdfs.env
  CLASSPATH_HDFS="$CONF:$DIR/www:$LIB/*"
}

# Hadoop 3.4 on Java 17 reflects into the JDK in a few places (e.g. the ShutdownHookManager,
# the DataNode's netty and the UGI), as the distribution's own scripts allow.
JVM_COMMON=(
  -XX:+UseG1GC -Djava.net.preferIPv4Stack=true -Djava.awt.headless=true
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.security.action=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
  --add-exports=java.base/sun.net.dns=ALL-UNNAMED --add-exports=java.base/sun.net.util=ALL-UNNAMED
)
# Short-lived tools (DFSAdmin, FsShell): a small heap and the C1 compiler start fastest.
JVM_TOOL=(-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.net.preferIPv4Stack=true)

# ---------------------------------------------------------------------------------------------
# processes (same conventions as deploy/stack.sh: a pid file plus a -Dkbr.stack=<dir> marker)

pid_of() {
  local d=$DIR/$1 pid cmdline
  [[ -s $d/pid ]] || return 1
  pid=$(<"$d/pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *"-Dkbr.stack=$d "* ]] || return 1
  echo "$pid"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

daemon_log() { case $1 in nn) echo "$DIR/nn/namenode.log" ;; dn) echo "$DIR/dn/datanode.log" ;; esac; }

show_logs() {
  local name=$1 f
  for f in "$(daemon_log "$name")" "$DIR/$name/stdout.log"; do
    [[ -s $f ]] || continue
    printf '\n----- last 60 lines of %s -----\n' "$f" >&2
    tail -n 60 "$f" >&2
  done
}

# launch NAME CMD...: detached in its own session; the child writes its pid before exec. The JVM
# must not inherit the stack's lock (fd 9, held by deploy/stack.sh) nor ours (fd 8).
launch() {
  local name=$1; shift
  local d=$DIR/$name i
  mkdir -p "$d"
  rm -f "$d/pid"
  printf '===== %s starting: %s\n' "$(date -Is)" "$*" >>"$d/stdout.log"
  # shellcheck disable=SC2016 # $$ and $0 belong to the inner shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$d/pid" "$@" </dev/null >>"$d/stdout.log" 2>&1 8>&- 9>&- &
  for i in $(seq 50); do [[ -s $d/pid ]] && break; sleep 0.1; done
  [[ -s $d/pid ]] || die "$name: no pid file after launch"
  log "$name started (pid $(<"$d/pid"))"
}

stop_proc() {
  local name=$1 pid i
  if ! pid=$(pid_of "$name"); then
    rm -f "$DIR/$name/pid"
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
  rm -f "$DIR/$name/pid"
  log "$name stopped"
}

take_lock() {
  mkdir -p "$DIR"
  exec 8>"$DIR/.lock"
  flock 8
}

# ---------------------------------------------------------------------------------------------
# jars

# The pom's checksum in .complete marks a complete copy; a changed pom triggers a fresh one.
resolve_jars() {
  local sum tmp=$LOCAL/lib/.hadoop.tmp mvnlog=$LOCAL/lib/mvn-hadoop.log
  sum=$(sha256sum "$POM" | cut -d' ' -f1)
  [[ -f $LIB/.complete && $(<"$LIB/.complete") == "$sum" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (deploy/stack.sh up installs maven)"
  if [[ -d $LIB ]] && { pid_of nn >/dev/null || pid_of dn >/dev/null; }; then
    die "$POM changed while HDFS runs; run deploy/stack.sh down first"
  fi
  log "resolving Hadoop $HADOOP_VERSION jars (Maven)"
  mkdir -p "$LOCAL/lib"
  rm -rf "$tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
    cat "$mvnlog" >&2
    die "maven could not resolve $POM"
  fi
  ls "$tmp"/hadoop-hdfs-"$HADOOP_VERSION".jar >/dev/null 2>&1 || die "no hadoop-hdfs jar in $tmp"
  rm -rf "$LIB"
  mv "$tmp" "$LIB"
  echo "$sum" >"$LIB/.complete"
  log "Hadoop jars in $LIB ($(du -sh "$LIB" | cut -f1))"
}

# ---------------------------------------------------------------------------------------------
# configuration (regenerated on every start; data dirs are never touched here)

prop() { printf '  <property><name>%s</name><value>%s</value></property>\n' "$1" "$2"; }

write_config() {
  mkdir -p "$CONF" "$DIR/nn" "$DIR/dn" "$DIR/tmp"
  # The daemons' HTTP servers look up webapps/<name> on the classpath. The binary distribution
  # ships the web UI there; the Maven jars do not. Empty directories serve the servlets the
  # daemons register themselves (JMX, WebHDFS, /stacks) without the HTML UI.
  mkdir -p "$DIR/www/webapps/hdfs" "$DIR/www/webapps/datanode" "$DIR/www/webapps/static"
  {
    echo '<?xml version="1.0"?>'
    echo '<!-- generated by deploy/services/hdfs.sh -->'
    echo '<configuration>'
    prop fs.defaultFS "hdfs://127.0.0.1:$NN_RPC_PORT"
    prop hadoop.tmp.dir "$DIR/tmp"
    prop hadoop.security.authentication simple
    prop hadoop.security.authorization false
    echo '</configuration>'
  } >"$CONF/core-site.xml"
  {
    echo '<?xml version="1.0"?>'
    echo '<!-- generated by deploy/services/hdfs.sh -->'
    echo '<configuration>'
    prop dfs.namenode.name.dir "file://$DIR/name"
    prop dfs.datanode.data.dir "file://$DIR/data"
    prop dfs.replication 1
    prop dfs.permissions.enabled true
    prop dfs.permissions.superusergroup supergroup
    # every address on loopback, also those of daemons we do not run
    prop dfs.namenode.rpc-address "127.0.0.1:$NN_RPC_PORT"
    prop dfs.namenode.http-address "127.0.0.1:$NN_HTTP_PORT"
    prop dfs.namenode.https-address "127.0.0.1:$NN_HTTPS_PORT"
    prop dfs.http.policy HTTP_ONLY
    prop dfs.namenode.secondary.http-address "127.0.0.1:$SNN_HTTP_PORT"
    prop dfs.namenode.secondary.https-address "127.0.0.1:$SNN_HTTPS_PORT"
    prop dfs.namenode.backup.address "127.0.0.1:$BACKUP_PORT"
    prop dfs.namenode.backup.http-address "127.0.0.1:$BACKUP_HTTP_PORT"
    prop dfs.datanode.address "127.0.0.1:$DN_XFER_PORT"
    prop dfs.datanode.http.address "127.0.0.1:$DN_HTTP_PORT"
    prop dfs.datanode.https.address "127.0.0.1:$DN_HTTPS_PORT"
    prop dfs.datanode.ipc.address "127.0.0.1:$DN_IPC_PORT"
    prop dfs.datanode.hostname 127.0.0.1
    prop dfs.client.use.datanode.hostname false
    # tests may ask for small blocks (multi-block files without gigabytes of data)
    prop dfs.namenode.fs-limits.min-block-size 4096
    # Out of safe mode means ready: the DataNode registered and every block reported (the
    # default 0.999 lets a NameNode with under 1000 blocks leave before any report). No 30 s
    # extension, 1 s heartbeats, no delayed block deletion: quick restarts.
    prop dfs.namenode.safemode.threshold-pct 1.0
    prop dfs.namenode.safemode.min.datanodes 1
    prop dfs.namenode.safemode.extension 0
    prop dfs.heartbeat.interval 1
    prop dfs.namenode.startup.delay.block.deletion.sec 0
    # leave the disk some room; HDFS reports the rest as remaining
    prop dfs.datanode.du.reserved 2147483648
    echo '</configuration>'
  } >"$CONF/hdfs-site.xml"
  # Clients (FsShell, DFSAdmin) find this on the classpath: warnings only, to stderr.
  cat >"$CONF/log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
EOF
  local name
  for name in nn dn; do
    cat >"$DIR/$name/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$(daemon_log "$name")
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d{ISO8601} %-5p %c{2}: %m%n
log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=WARN
log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode.clienttrace=WARN
log4j.logger.BlockStateChange=WARN
# a line or three per block received or deleted; warnings and errors stay
log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode=WARN
log4j.logger.org.apache.hadoop.hdfs.server.datanode.fsdataset.impl.FsDatasetAsyncDiskService=WARN
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
EOF
  done
}

# launch_daemon NAME MAINCLASS
launch_daemon() {
  local name=$1 d=$DIR/$1
  # a marker in the daemon's log too: check_classes reads what follows the latest one
  printf '===== %s starting %s\n' "$(date -Is)" "$2" >>"$(daemon_log "$name")"
  launch "$name" java -Xmx512m "${JVM_COMMON[@]}" "-Dkbr.stack=$d" \
    "-Dlog4j.configuration=file:$d/log4j.properties" "-Dhadoop.log.dir=$d" \
    "-Dhadoop.home.dir=$DIR" -cp "$CLASSPATH_HDFS" "$2"
}

# ---------------------------------------------------------------------------------------------
# tools

# tool [--as USER] [--timeout SECS] CLASS ARGS...: a Hadoop tool against the stack, output on
# stdout. The superuser by default.
tool() {
  local user=$SUPERUSER secs=600
  while :; do
    case $1 in
      --as) user=$2; shift 2 ;;
      --timeout) secs=$2; shift 2 ;;
      *) break ;;
    esac
  done
  HADOOP_USER_NAME=$user timeout "$secs" java "${JVM_TOOL[@]}" -cp "$CLASSPATH_HDFS" "$@"
}

format_once() {
  [[ -f $DIR/name/current/VERSION ]] && return 0
  log "formatting the NameNode (cluster id $CLUSTER_ID)"
  rm -rf "$DIR/name" "$DIR/data" "$DIR/.initialized"
  if ! java -Xmx256m "${JVM_COMMON[@]}" "-Dlog4j.configuration=file:$DIR/nn/log4j.properties" \
      -cp "$CLASSPATH_HDFS" org.apache.hadoop.hdfs.server.namenode.NameNode \
      -format -nonInteractive -clusterid "$CLUSTER_ID" >"$DIR/nn/format.log" 2>&1; then
    cat "$DIR/nn/format.log" >&2
    tail -n 40 "$(daemon_log nn)" >&2 || true
    die "formatting the NameNode failed"
  fi
}

# wait_until WHAT CHECK...: polls CHECK; fails (with log tails) on timeout or when a
# daemon died.
wait_until() {
  local what=$1; shift
  while ! "$@"; do
    local n
    for n in nn dn; do
      if [[ ${WANT[$n]:-} ]] && ! pid_of "$n" >/dev/null; then
        log "$n exited while waiting for: $what"
        show_logs "$n"
        exit 1
      fi
    done
    if ((SECONDS >= DEADLINE)); then
      log "timed out after ${TIMEOUT}s waiting for: $what"
      show_logs nn
      show_logs dn
      exit 1
    fi
    sleep 0.5
  done
}

safemode_off() {
  local left=$((DEADLINE - SECONDS)) out
  ((left > 0)) || return 1
  # -safemode wait blocks until the NameNode leaves safe mode (it needs the DataNode's blocks).
  out=$(tool --timeout "$left" org.apache.hadoop.hdfs.tools.DFSAdmin -safemode wait 2>&1) || return 1
  [[ $out == *"Safe mode is OFF"* ]]
}

datanode_live() {
  local out
  out=$(tool --timeout 30 org.apache.hadoop.hdfs.tools.DFSAdmin -report -live 2>&1) || return 1
  [[ $out == *"Live datanodes (1)"* ]]
}

# No class may be missing: the pom excludes artifacts, and a wrong exclusion shows up here. Only
# the output of the daemons' latest start counts.
check_classes() {
  local n f start
  for n in "${!WANT[@]}"; do
    for f in "$(daemon_log "$n")" "$DIR/$n/stdout.log"; do
      [[ -f $f ]] || continue
      start=$(grep -n '^===== .* starting' "$f" | tail -n 1 | cut -d: -f1 || true)
      # grep -c reads to the end: with pipefail, grep -q could stop early and fail the pipe
      if (($(tail -n +"${start:-1}" "$f" | grep -c 'java.lang.NoClassDefFoundError' || true) > 0)); then
        tail -n +"${start:-1}" "$f" | grep -m 5 -B2 -A5 'java.lang.NoClassDefFoundError' >&2 || true
        die "$n: a class is missing (see $f); an exclusion in $POM is wrong"
      fi
    done
  done
}

# wait_ready: NameNode answering and out of safe mode, one live DataNode.
wait_ready() {
  DEADLINE=$((SECONDS + TIMEOUT))
  wait_until "NameNode RPC port 127.0.0.1:$NN_RPC_PORT" port_open "$NN_RPC_PORT"
  wait_until "DataNode port 127.0.0.1:$DN_XFER_PORT" port_open "$DN_XFER_PORT"
  wait_until "NameNode out of safe mode (DFSAdmin -safemode wait)" safemode_off
  wait_until "one live DataNode (DFSAdmin -report -live)" datanode_live
  check_classes
}

# One-off after format: the unprivileged test user's home.
init_fs() {
  [[ -f $DIR/.initialized ]] && return 0
  log "creating $HDFS_HOME (owner $HDFS_USER)"
  tool org.apache.hadoop.fs.FsShell -mkdir -p "$HDFS_HOME" /tmp >/dev/null
  tool org.apache.hadoop.fs.FsShell -chown "$HDFS_USER:$HDFS_USER" "$HDFS_HOME" >/dev/null
  tool org.apache.hadoop.fs.FsShell -chmod 1777 /tmp >/dev/null
  touch "$DIR/.initialized"
}

write_env() {
  local PORT_ARG=
  ((PORT_OFFSET == 0)) || PORT_ARG=" $PORT_OFFSET"
  mkdir -p "$(dirname "$ENV_OUT")"
  cat >"$ENV_OUT.tmp" <<EOF
KBR_HDFS_VERSION=$HADOOP_VERSION
KBR_HDFS_NAMENODE=127.0.0.1:$NN_RPC_PORT
KBR_HDFS_HTTP=127.0.0.1:$NN_HTTP_PORT
KBR_HDFS_DATANODE=127.0.0.1:$DN_XFER_PORT
KBR_HDFS_USER=$HDFS_USER
KBR_HDFS_HOME=$HDFS_HOME
KBR_HDFS_SUPERUSER=$SUPERUSER
KBR_HDFS_CONF_DIR=$CONF
KBR_HDFS_CLASSPATH=$CLASSPATH_HDFS
KBR_HDFS_STOP=$SELF nn-stop $LOCAL$PORT_ARG
KBR_HDFS_START=$SELF nn-start $LOCAL$PORT_ARG
KBR_HDFS_DOWN=$SELF down $LOCAL$PORT_ARG
KBR_HDFS_UP=$SELF up $LOCAL$PORT_ARG
EOF
  mv "$ENV_OUT.tmp" "$ENV_OUT"
}

# port_free NAME PORT: a daemon we are about to start must not find its port taken (say, by a
# daemon whose pid file was deleted): it would die, and the old one would answer instead.
port_free() {
  port_open "$2" || return 0
  die "$1: 127.0.0.1:$2 is already in use by another process ($(ss -ltnpH "sport = :$2" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1)); stop it first"
}

start_nn() {
  pid_of nn >/dev/null && return 0
  port_free nn "$NN_RPC_PORT"
  launch_daemon nn org.apache.hadoop.hdfs.server.namenode.NameNode
}

start_dn() {
  pid_of dn >/dev/null && return 0
  port_free dn "$DN_XFER_PORT"
  launch_daemon dn org.apache.hadoop.hdfs.server.datanode.DataNode
}

# ---------------------------------------------------------------------------------------------
# commands

declare -A WANT=()

cmd_up() {
  take_lock
  command -v java >/dev/null || die "java not found (deploy/stack.sh up installs it)"
  resolve_jars
  write_config
  if pid_of nn >/dev/null && pid_of dn >/dev/null && [[ -f $DIR/.initialized ]]; then
    WANT=([nn]=1 [dn]=1)
    # Running: a quick check that it still answers, no DFSAdmin round trips.
    DEADLINE=$((SECONDS + TIMEOUT))
    wait_until "NameNode RPC port 127.0.0.1:$NN_RPC_PORT" port_open "$NN_RPC_PORT"
    write_env
    log "HDFS already running: NameNode 127.0.0.1:$NN_RPC_PORT"
    return 0
  fi
  format_once
  WANT=([nn]=1 [dn]=1)
  start_nn
  start_dn
  wait_ready
  init_fs
  write_env
  log "HDFS $HADOOP_VERSION ready: NameNode 127.0.0.1:$NN_RPC_PORT, user $HDFS_USER home $HDFS_HOME"
}

cmd_down() {
  [[ -d $DIR ]] || return 0
  take_lock
  stop_proc dn
  stop_proc nn
}

cmd_wipe() {
  cmd_down
  [[ -d $DIR ]] || { rm -f "$ENV_OUT"; return 0; }
  log "wiping $DIR (keeping $LIB)"
  rm -rf "${DIR:?}"
  rm -f "$ENV_OUT"
}

cmd_nn_stop() {
  take_lock
  stop_proc nn
}

cmd_nn_start() {
  take_lock
  [[ -f $DIR/name/current/VERSION && -f $LIB/.complete ]] || die "HDFS was never set up; run deploy/stack.sh up"
  write_config
  WANT=([nn]=1 [dn]=1)
  pid_of dn >/dev/null || log "the DataNode is not running either; starting it too"
  start_nn
  start_dn
  wait_ready
  log "NameNode ready on 127.0.0.1:$NN_RPC_PORT"
}

cmd_status() {
  local n pid rc=0
  for n in nn dn; do
    if pid=$(pid_of "$n"); then printf '%-3s pid %-8s running\n' "$n" "$pid"
    else printf '%-3s pid %-8s stopped\n' "$n" -; rc=1; fi
  done
  return $rc
}

cmd_logs() {
  local name=${1:-} lines=100
  [[ $name == nn || $name == dn ]] || die "usage: hdfs.sh logs nn|dn [-n N]"
  [[ ${2:-} == -n ]] && lines=${3:-100}
  tail -n "$lines" "$(daemon_log "$name")"
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    logs) set_dirs ""; cmd_logs "$@"; return ;;
  esac
  set_dirs "${1:-}"
  if [[ -n ${2:-} ]]; then
    [[ $2 =~ ^[0-9]+$ ]] || die "PORT_OFFSET must be a number, not '$2'"
    set_ports "$2"
  fi
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    wipe) cmd_wipe ;;
    nn-stop) cmd_nn_stop ;;
    nn-start) cmd_nn_start ;;
    status) cmd_status ;;
    *) sed -n '2,23p' "$SELF" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
}

main "$@"
