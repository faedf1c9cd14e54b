#!/usr/bin/env bash
# MinIO for the OBS backend's tests: a real S3 server on loopback, built from the Go module proxy.
#
#   deploy/services/minio.sh up      build (once, cached) and start MinIO, wait until it answers,
#                                    create the bucket, write $KBR_STACK_DIR/services/minio.env
#   deploy/services/minio.sh down    stop it (data kept)
#   deploy/services/minio.sh wipe    stop it and delete its data, keys and env file
#   deploy/services/minio.sh start | stop     the same as up | down (KBR_OBS_START / KBR_OBS_STOP)
#   deploy/services/minio.sh status  exit 0 when it runs and answers
#
# S3 on 127.0.0.1:19000, console on 127.0.0.1:19001, data under $KBR_STACK_DIR/minio/data. The root
# user and password are generated once and kept in $KBR_STACK_DIR/minio/root-user and root-password
# (mode 600); the tests use them as the backend's access and secret key files. MINIO_DOMAIN=localhost
# makes virtual-hosted requests (Host: <bucket>.localhost:19000) work besides path-style ones.
#
# The bucket is created here by a tiny Go program (storage/obs/internal/mkbucket, minio-go):
# there is no `mc` on these machines. The backend itself never creates buckets.
#
# The MinIO binary is built with `go install github.com/minio/minio@$MINIO_VERSION` into
# $KBR_CACHE_DIR/minio/$MINIO_VERSION/ (default ~/.cache/kbr), so only the first `up` on a machine
# pays for the build: about 2.5 minutes on an idle 2-core machine, about 10 minutes on 2026-11-22
# with other builds running (load average 12-15); a 150 MB binary. build.log beside it says how
# long it took.
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(dirname "$DEPLOY_DIR")
STACK_DIR=${KBR_STACK_DIR:-$DEPLOY_DIR/local}
DIR=$STACK_DIR/minio
ENV_OUT=$STACK_DIR/services/minio.env

# `go list -m github.com/minio/minio@latest` on 2026-11-22: MinIO publishes no semver tags on the
# module, so the newest is this pseudo-version (commit 7aac2a2c5b7c of 2026-02-12).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
CACHE=${KBR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kbr}
BIN_DIR=$CACHE/minio/$MINIO_VERSION
BIN=$BIN_DIR/minio

ADDR=127.0.0.1
PORT=19000
CONSOLE_PORT=19001
BUCKET=kbr-test
REGION=us-east-1
TIMEOUT=${KBR_STACK_TIMEOUT:-90}
STOP_TIMEOUT=30

log() { printf '[minio] %s\n' "$*" >&2; }
die() { printf '[minio] ERROR: %s\n' "$*" >&2; exit 1; }

# pid_of: the pid if our MinIO runs. The pid file alone is not trusted (pids get reused): the
# command line must name our data dir.
pid_of() {
  local pid cmdline
  [[ -s $DIR/pid ]] || return 1
  pid=$(<"$DIR/pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  local i
  for i in $(seq 20); do
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ -n $cmdline ]] && break
    # Empty for a zombie (gone), and for a moment while the launcher execs MinIO (read it again).
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 1
    sleep 0.05
  done
  [[ $cmdline == *" $DIR/data "* ]] || return 1
  echo "$pid"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$ADDR/$1" 2>/dev/null; }

# healthy: GET /minio/health/ready answers 200 (the S3 API serves requests).
healthy() {
  local status
  status=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" &&
    printf "GET /minio/health/ready HTTP/1.0\r\nHost: %s:%s\r\n\r\n" "$0" "$1" >&3 && head -n1 <&3' \
    "$ADDR" "$PORT" 2>/dev/null) || return 1
  [[ $status == *" 200 "* ]]
}

ensure_binary() {
  [[ -x $BIN ]] && return 0
  command -v go >/dev/null || die "go is needed to build MinIO"
  mkdir -p "$BIN_DIR"
  # Two `up`s at once must not build twice; the lock file lives beside the binary.
  exec 8>"$BIN_DIR/.build.lock"
  flock 8
  if [[ ! -x $BIN ]]; then
    log "building MinIO $MINIO_VERSION from the Go module proxy (once per machine; minutes)"
    local tmp=$BIN_DIR/.build.tmp start=$SECONDS
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # From / so that no surrounding go.mod interferes.
    if ! (cd / && GOBIN=$tmp GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION") \
        >"$BIN_DIR/build.log" 2>&1; then
      tail -n 40 "$BIN_DIR/build.log" >&2
      die "building MinIO failed (log: $BIN_DIR/build.log)"
    fi
    mv "$tmp/minio" "$BIN"
    rm -rf "$tmp"
    echo "built $MINIO_VERSION in $((SECONDS - start)) s on $(date -Is)" >>"$BIN_DIR/build.log"
    log "built MinIO in $((SECONDS - start)) s: $BIN"
  fi
  exec 8>&-
}

# ensure_keys: the root user and password, generated once.
ensure_keys() {
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  if [[ ! -s $DIR/root-user || ! -s $DIR/root-password ]]; then
    (umask 077
      printf 'kbr%s\n' "$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')" >"$DIR/root-user"
      printf '%s\n' "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >"$DIR/root-password")
    log "generated root user and password in $DIR"
  fi
}

start() {
  ensure_binary
  ensure_keys
  if pid_of >/dev/null; then
    wait_ready
    return 0
  fi
  port_open "$PORT" && die "port $ADDR:$PORT is taken by a process that is not this stack's MinIO"
  port_open "$CONSOLE_PORT" && die "port $ADDR:$CONSOLE_PORT is taken by a process that is not this stack's MinIO"
  mkdir -p "$DIR/data"
  rm -f "$DIR/pid"
  printf '===== %s starting MinIO %s\n' "$(date -Is)" "$MINIO_VERSION" >>"$DIR/minio.log"
  # 9>&- : stack.sh holds its lock on fd 9; MinIO must not inherit it. Trailing "--quiet" keeps
  # "$DIR/data " (with a space) in the command line for pid_of.
  MINIO_ROOT_USER=$(<"$DIR/root-user") MINIO_ROOT_PASSWORD=$(<"$DIR/root-password") \
  MINIO_DOMAIN=localhost MINIO_SITE_REGION=$REGION MINIO_UPDATE=off MINIO_BROWSER=on \
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$DIR/pid" \
      "$BIN" server "$DIR/data" --address "$ADDR:$PORT" --console-address "$ADDR:$CONSOLE_PORT" --quiet \
      </dev/null >>"$DIR/minio.log" 2>&1 9>&- 8>&- &
  local i
  for i in $(seq 50); do [[ -s $DIR/pid ]] && break; sleep 0.1; done
  [[ -s $DIR/pid ]] || die "no pid file after launch"
  log "MinIO started (pid $(<"$DIR/pid"))"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + TIMEOUT))
  until healthy; do
    if ! pid_of >/dev/null; then
      tail -n 40 "$DIR/minio.log" >&2
      die "MinIO exited while starting (log: $DIR/minio.log)"
    fi
    ((SECONDS < deadline)) || { tail -n 40 "$DIR/minio.log" >&2; die "MinIO did not answer within ${TIMEOUT}s"; }
    sleep 0.3
  done
  ensure_bucket
  log "MinIO ready on http://$ADDR:$PORT (console http://$ADDR:$CONSOLE_PORT), bucket $BUCKET"
}

ensure_bucket() {
  # The stamp lives in DIR, so a wipe forgets it together with the data.
  [[ -f $DIR/bucket-$BUCKET.created ]] && return 0
  (cd "$REPO" && go run ./storage/obs/internal/mkbucket -endpoint "http://$ADDR:$PORT" \
    -access-key-file "$DIR/root-user" -secret-key-file "$DIR/root-password" \
    -bucket "$BUCKET" -region "$REGION" -wait "${TIMEOUT}s") >&2 || die "could not create bucket $BUCKET"
  touch "$DIR/bucket-$BUCKET.created"
}

stop() {
  local pid i
  if ! pid=$(pid_of); then
    rm -f "$DIR/pid"
    log "MinIO not running"
    return 0
  fi
  log "stopping MinIO (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    pid_of >/dev/null || break
    sleep 0.1
  done
  if pid_of >/dev/null; then
    log "MinIO did not stop within ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while pid_of >/dev/null; do sleep 0.1; done
  fi
  rm -f "$DIR/pid"
  log "MinIO stopped"
}

write_env() {
  mkdir -p "$(dirname "$ENV_OUT")"
  cat >"$ENV_OUT.tmp" <<EOF
KBR_OBS_ENDPOINT=http://$ADDR:$PORT
KBR_OBS_VHOST_ENDPOINT=http://localhost:$PORT
KBR_OBS_CONSOLE=http://$ADDR:$CONSOLE_PORT
KBR_OBS_BUCKET=$BUCKET
KBR_OBS_REGION=$REGION
KBR_OBS_ACCESS_KEY_FILE=$DIR/root-user
KBR_OBS_SECRET_KEY_FILE=$DIR/root-password
KBR_OBS_STOP=$SELF stop
KBR_OBS_START=$SELF start
KBR_OBS_MINIO_VERSION=$MINIO_VERSION
KBR_OBS_MINIO_BIN=$BIN
EOF
  mv "$ENV_OUT.tmp" "$ENV_OUT"
}

case ${1:-} in
  up | start) start; write_env ;;
  down | stop) stop ;;
  wipe) stop; rm -rf "${DIR:?}"; rm -f "$ENV_OUT" ;;
  status) pid_of >/dev/null && healthy ;;
  *) sed -n '2,12p' "$SELF" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
