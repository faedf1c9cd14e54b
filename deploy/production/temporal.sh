#!/usr/bin/env bash
# A Temporal cluster for kbr on PostgreSQL: build the server and its SQL schema tool (Go module
# go.temporal.io/server, the version kbr embeds), run a PostgreSQL of its own, set the schema
# up, start and stop the server. The e2e test of the production topology drives it; an operator
# can follow the same steps (README.md beside this file).
#
#   temporal.sh build                 build temporal-server and temporal-sql-tool once (cached);
#                                     prints their directory
#   temporal.sh pg-start DIR PORT     initdb DIR/pgdata (superuser $KBR_TEMPORAL_DB_USER, password
#                                     $KBR_TEMPORAL_DB_PASSWORD) unless done, start it on
#                                     127.0.0.1:PORT, wait until it answers
#   temporal.sh pg-stop DIR
#   temporal.sh schema DIR PORT       create the databases temporal and temporal_visibility on
#                                     127.0.0.1:PORT and bring both schemas to the latest version
#                                     (the tool's log: DIR/schema.log)
#   temporal.sh server-start DIR      start temporal-server with temporal.yaml (KBR_TEMPORAL_*,
#                                     see its header), log DIR/temporal.log, wait for the frontend
#   temporal.sh server-stop DIR
#
# Debian's postgresql package is installed if missing (deploy/packages.sh). Secrets come from
# the environment only and are never printed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TEMPORAL_VERSION=v1.32.0
CACHE=${KBR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kbr}/temporal-$TEMPORAL_VERSION
DB_USER=${KBR_TEMPORAL_DB_USER:-temporal}

log() { printf '[temporal] %s\n' "$*" >&2; }
die() { printf '[temporal] ERROR: %s\n' "$*" >&2; exit 1; }

cmd_build() {
  mkdir -p "$CACHE"
  # go.mod lists both as tools of the kbr module: the same module graph as the embedded server,
  # so the build reuses kbr's compiled packages (seconds, not minutes, once kbr is built).
  local want have
  want=$(cd "$ROOT" && go list -m -f '{{.Version}}' go.temporal.io/server)
  [[ $want == "$TEMPORAL_VERSION" ]] || die "go.mod has go.temporal.io/server $want, this script builds $TEMPORAL_VERSION"
  have=$(cat "$CACHE/.complete" 2>/dev/null || true)
  if [[ $have != "$TEMPORAL_VERSION" || ! -x $CACHE/temporal-server || ! -x $CACHE/temporal-sql-tool ]]; then
    log "building temporal-server and temporal-sql-tool $TEMPORAL_VERSION into $CACHE"
    (cd "$ROOT" && go build -o "$CACHE/temporal-server.tmp" go.temporal.io/server/cmd/server &&
      go build -o "$CACHE/temporal-sql-tool.tmp" go.temporal.io/server/cmd/tools/sql)
    mv "$CACHE/temporal-server.tmp" "$CACHE/temporal-server"
    mv "$CACHE/temporal-sql-tool.tmp" "$CACHE/temporal-sql-tool"
    echo "$TEMPORAL_VERSION" >"$CACHE/.complete"
  fi
  echo "$CACHE"
}

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [[ -z $d ]]; then
    "$ROOT/deploy/packages.sh" postgresql
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  fi
  [[ -x $d/postgres ]] || die "no PostgreSQL under /usr/lib/postgresql"
  echo "$d"
}

# as_pg CMD...: PostgreSQL refuses to run as root; as root, run its tools as user postgres.
as_pg() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd_pg_start() {
  local dir=${1:?usage: pg-start DIR PORT} port=${2:?usage: pg-start DIR PORT}
  [[ -n ${KBR_TEMPORAL_DB_PASSWORD:-} ]] || die "KBR_TEMPORAL_DB_PASSWORD is not set"
  local bin data=$dir/pgdata
  bin=$(pg_bin)
  mkdir -p "$dir"
  if [[ ! -f $data/PG_VERSION ]]; then
    mkdir -p "$data"
    ((EUID == 0)) && chown postgres: "$data" && chmod 0700 "$data"
    local pw
    pw=$(mktemp "$dir/.pw.XXXXXX")
    printf '%s\n' "$KBR_TEMPORAL_DB_PASSWORD" >"$pw"
    ((EUID == 0)) && chown postgres: "$pw"
    log "initdb $data (superuser $DB_USER)"
    if ! as_pg "$bin/initdb" -D "$data" -U "$DB_USER" --pwfile="$pw" --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
      rm -f "$pw"
      cat "$dir/initdb.log" >&2
      die "initdb failed"
    fi
    rm -f "$pw"
  fi
  log "starting PostgreSQL on 127.0.0.1:$port"
  as_pg "$bin/pg_ctl" -D "$data" -l "$data/postgresql.log" -w -t 60 \
    -o "-p $port -h 127.0.0.1 -k $data -c fsync=off -c max_connections=100" start >/dev/null ||
    { tail -20 "$data/postgresql.log" >&2; die "PostgreSQL did not start"; }
  as_pg "$bin/pg_isready" -h 127.0.0.1 -p "$port" -t 30 >/dev/null || die "PostgreSQL does not answer on $port"
}

cmd_pg_stop() {
  local dir=${1:?usage: pg-stop DIR} bin
  bin=$(pg_bin)
  [[ -f $dir/pgdata/postmaster.pid ]] || { log "PostgreSQL of $dir not running"; return 0; }
  as_pg "$bin/pg_ctl" -D "$dir/pgdata" -m fast -w stop >/dev/null
  log "PostgreSQL of $dir stopped"
}

cmd_schema() {
  local dir=${1:?usage: schema DIR PORT} port=${2:?usage: schema DIR PORT} tool db
  tool=$(cmd_build)/temporal-sql-tool
  [[ -n ${KBR_TEMPORAL_DB_PASSWORD:-} ]] || die "KBR_TEMPORAL_DB_PASSWORD is not set"
  mkdir -p "$dir"
  local out=$dir/schema.log
  sql() {
    # The password through the tool's own variable, never on a command line.
    SQL_PASSWORD=$KBR_TEMPORAL_DB_PASSWORD "$tool" --plugin postgres12 --ep 127.0.0.1 -p "$port" \
      -u "$DB_USER" --db "$db" "$@" >>"$out" 2>&1
  }
  for db in temporal temporal_visibility; do
    local schema=postgresql/v12/temporal
    [[ $db == temporal_visibility ]] && schema=postgresql/v12/visibility
    sql create-database || grep -q "already exists" "$out" || { tail -20 "$out" >&2; die "create database $db failed"; }
    sql setup-schema -v 0.0 || { tail -20 "$out" >&2; die "setup-schema of $db failed"; }
    sql update-schema --schema-name "$schema" || { tail -20 "$out" >&2; die "update-schema of $db failed"; }
    log "schema of $db at the latest version (log $out)"
  done
}

cmd_server_start() {
  local dir=${1:?usage: server-start DIR} server
  server=$(cmd_build)/temporal-server
  [[ -n ${KBR_TEMPORAL_DB_PASSWORD:-} ]] || die "KBR_TEMPORAL_DB_PASSWORD is not set"
  mkdir -p "$dir"
  local port=${KBR_TEMPORAL_FRONTEND_PORT:-7233}
  log "starting temporal-server (frontend 127.0.0.1:$port), log $dir/temporal.log"
  # 9>&- and setsid: the server is not the caller's job and holds none of its locks.
  setsid "$server" --config-file "$HERE/temporal.yaml" --allow-no-auth start \
    </dev/null >>"$dir/temporal.log" 2>&1 9>&- &
  echo $! >"$dir/temporal.pid"
  local i
  for ((i = 0; i < 240; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$(cat "$dir/temporal.pid")" 2>/dev/null || { tail -30 "$dir/temporal.log" >&2; die "temporal-server exited"; }
    sleep 0.5
  done
  tail -30 "$dir/temporal.log" >&2
  die "temporal-server's frontend did not answer on $port within 120s"
}

cmd_server_stop() {
  local dir=${1:?usage: server-stop DIR} pid i
  [[ -f $dir/temporal.pid ]] || { log "no temporal-server pid in $dir"; return 0; }
  pid=$(cat "$dir/temporal.pid")
  if kill -TERM "$pid" 2>/dev/null; then
    for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/temporal.pid"
  log "temporal-server stopped"
}

case ${1:-} in
  build) cmd_build ;;
  pg-start) shift; cmd_pg_start "$@" ;;
  pg-stop) shift; cmd_pg_stop "$@" ;;
  schema) shift; cmd_schema "$@" ;;
  server-start) shift; cmd_server_start "$@" ;;
  server-stop) shift; cmd_server_stop "$@" ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
