#!/usr/bin/env bash
# Schema Registry for the schemas data source's tests: Apicurio Registry 2.4.2.Final (its
# Confluent-compatible API at /apis/ccompat/v7), in-memory storage, built from Maven Central.
#
#   deploy/services/schemaregistry.sh up [NAME]       build (once, cached) and start the instance
#                                                      NAME (source or target; default both), wait
#                                                      until ready, write services/schemaregistry.env
#   deploy/services/schemaregistry.sh down [NAME]     stop it (in-memory: its schemas are gone)
#   deploy/services/schemaregistry.sh restart NAME    stop and start: an empty registry
#   deploy/services/schemaregistry.sh wipe            stop both, delete their logs and the env file
#   deploy/services/schemaregistry.sh status [NAME]   exit 0 when it runs and is ready
#
# Two instances on loopback ports of their own: source 127.0.0.1:18081 (the registry a backup
# reads) and target 127.0.0.1:18082 (a fresh registry a restore writes). Logs and pids under
# $KBR_STACK_DIR/schemaregistry/NAME/.
#
# The app is a Quarkus uber-jar built by Maven from deploy/maven/schemaregistry/pom.xml into
# $KBR_CACHE_DIR/schemaregistry/$VERSION/ (default ~/.cache/kbr), so only the first `up` on a
# machine pays for it: about 210 MiB of downloads and two minutes (build.log says how long).
# Apicurio's POMs name repositories other than Central, which cannot be reached from here: the
# build's settings.xml blocks every repository but Central (Maven's default one), so resolution
# never waits on them. Apicurio 2.4 has no IMPORT mode and no Kafka storage: the tests exercise
# the re-registration path against it (see README.md, "Schema Registry").
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
DEPLOY_DIR=$(cd "$HERE/.." && pwd)
STACK_DIR=${KBR_STACK_DIR:-$DEPLOY_DIR/local}
DIR=$STACK_DIR/schemaregistry
ENV_OUT=$STACK_DIR/services/schemaregistry.env

VERSION=2.4.2.Final
CACHE=${KBR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kbr}
BUILD_DIR=$CACHE/schemaregistry/$VERSION
JAR=$BUILD_DIR/apicurio-registry-$VERSION-runner.jar
POM=$DEPLOY_DIR/maven/schemaregistry/pom.xml
PROPS=$DEPLOY_DIR/maven/schemaregistry/application.properties

ADDR=127.0.0.1
declare -A PORT=([source]=18081 [target]=18082)
NAMES=(source target)
TIMEOUT=${KBR_STACK_TIMEOUT:-90}
STOP_TIMEOUT=20

log() { printf '[schemaregistry] %s\n' "$*" >&2; }
die() { printf '[schemaregistry] ERROR: %s\n' "$*" >&2; exit 1; }

valid() {
  [[ -n ${PORT[${1:-}]:-} ]] || die "unknown instance '${1:-}' (one of: ${NAMES[*]})"
}

# pid_of NAME: the pid if the instance runs. The pid file alone is not trusted (pids get reused):
# the command line must carry our -Dkbr.stack=<dir> marker.
pid_of() {
  local f=$DIR/$1/pid pid cmdline
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"-Dkbr.stack=$DIR/$1 "* ]] || return 1
  echo "$pid"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$ADDR/$1" 2>/dev/null; }

# ready NAME: GET /health/ready answers 200.
ready() {
  local status
  status=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" &&
    printf "GET /health/ready HTTP/1.0\r\nHost: %s:%s\r\n\r\n" "$0" "$1" >&3 && head -n1 <&3' \
    "$ADDR" "${PORT[$1]}" 2>/dev/null) || return 1
  [[ $status == *" 200 "* ]]
}

ensure_jar() {
  local sum
  sum=$(cat "$POM" "$PROPS" | sha256sum | cut -d' ' -f1)
  [[ -f $JAR && -f $BUILD_DIR/.complete && $(<"$BUILD_DIR/.complete") == "$sum" ]] && return 0
  command -v java >/dev/null || die "java (17+) is needed"
  command -v mvn >/dev/null || die "maven is needed to build the registry"
  mkdir -p "$BUILD_DIR"
  # Two `up`s at once must not build twice.
  exec 8>"$BUILD_DIR/.build.lock"
  flock 8
  if [[ ! -f $JAR || ! -f $BUILD_DIR/.complete || $(<"$BUILD_DIR/.complete") != "$sum" ]]; then
    log "building Apicurio Registry $VERSION with Maven (once per machine; about two minutes)"
    local src=$BUILD_DIR/src start=$SECONDS
    rm -rf "$src"
    mkdir -p "$src/src/main/resources"
    cp "$POM" "$src/pom.xml"
    cp "$PROPS" "$src/src/main/resources/application.properties"
    # Every repository but Central (Maven's built-in default) is blocked: no host named here.
    cat >"$src/settings.xml" <<'EOF'
<settings>
  <mirrors>
    <mirror>
      <id>kbr-central-only</id>
      <mirrorOf>external:*,!central</mirrorOf>
      <url>http://0.0.0.0/blocked</url>
      <blocked>true</blocked>
    </mirror>
  </mirrors>
</settings>
EOF
    if ! (cd "$src" && mvn -q -B -Dstyle.color=never -s settings.xml package -DskipTests) >"$BUILD_DIR/build.log" 2>&1; then
      tail -n 40 "$BUILD_DIR/build.log" >&2
      die "building the registry failed (log: $BUILD_DIR/build.log)"
    fi
    local built
    built=$(ls "$src"/target/*-runner.jar 2>/dev/null | head -n1)
    [[ -f $built ]] || die "no runner jar in $src/target"
    mv "$built" "$JAR.tmp"
    mv "$JAR.tmp" "$JAR"
    rm -rf "$src"
    echo "$sum" >"$BUILD_DIR/.complete"
    echo "built $VERSION in $((SECONDS - start)) s on $(date -Is)" >>"$BUILD_DIR/build.log"
    log "built the registry in $((SECONDS - start)) s: $JAR"
  fi
  exec 8>&-
}

start() {
  local name=$1 dir=$DIR/$1 port=${PORT[$1]}
  if pid_of "$name" >/dev/null; then
    wait_ready "$name"
    return 0
  fi
  port_open "$port" && die "port $ADDR:$port is taken by a process that is not this stack's registry $name"
  mkdir -p "$dir"
  rm -f "$dir/pid"
  printf '===== %s starting Apicurio Registry %s (%s)\n' "$(date -Is)" "$VERSION" "$name" >>"$dir/registry.log"
  # 9>&- 8>&- 7>&- : stack.sh holds its lock on fd 9, this script its own on 7 and 8; the JVM
  # must inherit none of them (a later `down` would wait for it forever). The registry logs
  # to stdout (Quarkus' console), appended to registry.log.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$dir/pid" \
    java -Xmx384m -Xms64m -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError "-Dkbr.stack=$dir" \
      -Dquarkus.http.host=$ADDR "-Dquarkus.http.port=$port" -Dquarkus.log.level=WARN \
      -jar "$JAR" </dev/null >>"$dir/registry.log" 2>&1 9>&- 8>&- 7>&- &
  local i
  for i in $(seq 50); do [[ -s $dir/pid ]] && break; sleep 0.1; done
  [[ -s $dir/pid ]] || die "$name: no pid file after launch"
  log "$name started (pid $(<"$dir/pid"))"
  wait_ready "$name"
}

wait_ready() {
  local name=$1 deadline=$((SECONDS + TIMEOUT))
  until ready "$name"; do
    if ! pid_of "$name" >/dev/null; then
      tail -n 40 "$DIR/$name/registry.log" >&2
      die "$name exited while starting (log: $DIR/$name/registry.log)"
    fi
    ((SECONDS < deadline)) || { tail -n 40 "$DIR/$name/registry.log" >&2; die "$name not ready within ${TIMEOUT}s"; }
    sleep 0.3
  done
  log "$name ready on http://$ADDR:${PORT[$name]}/apis/ccompat/v7"
}

stop() {
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
  # The socket can outlive the process for a moment.
  for ((i = 0; i < 50; i++)); do port_open "${PORT[$name]}" || break; sleep 0.1; done
  rm -f "$DIR/$name/pid"
  log "$name stopped"
}

write_env() {
  mkdir -p "$(dirname "$ENV_OUT")"
  {
    echo "KBR_SCHEMAREG_VERSION=Apicurio Registry $VERSION"
    echo "KBR_SCHEMAREG_JAR=$JAR"
    echo "KBR_SCHEMAREG_SH=$SELF"
    local n N
    for n in "${NAMES[@]}"; do
      N=${n^^}
      echo "KBR_SCHEMAREG_${N}_URL=http://$ADDR:${PORT[$n]}/apis/ccompat/v7"
      echo "KBR_SCHEMAREG_${N}_RESTART=$SELF restart $n"
    done
  } >"$ENV_OUT.tmp"
  mv "$ENV_OUT.tmp" "$ENV_OUT"
}

# Serialise commands on the instances: a test's restart may overlap a `stack.sh up`.
take_lock() {
  mkdir -p "$DIR"
  exec 7>"$DIR/.lock"
  flock 7
}

names_of() {
  if [[ -n ${1:-} ]]; then valid "$1"; echo "$1"; else echo "${NAMES[@]}"; fi
}

cmd=${1:-}
(($#)) && shift
case $cmd in
  up | start)
    ensure_jar
    take_lock
    for n in $(names_of "${1:-}"); do start "$n"; done
    write_env ;;
  down | stop)
    take_lock
    for n in $(names_of "${1:-}"); do stop "$n"; done ;;
  restart)
    valid "${1:-}"
    ensure_jar
    take_lock
    stop "$1"
    start "$1"
    write_env ;;
  wipe)
    take_lock
    for n in "${NAMES[@]}"; do stop "$n"; rm -rf "${DIR:?}/$n"; done
    rm -f "$ENV_OUT" ;;
  status)
    for n in $(names_of "${1:-}"); do pid_of "$n" >/dev/null && ready "$n" || exit 1; done ;;
  *) sed -n '2,14p' "$SELF" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
