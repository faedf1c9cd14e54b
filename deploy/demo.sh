#!/usr/bin/env bash
# The README's first command: start `kbr server` (embedded Temporal + Web UI +
# worker) on the running test stack, make a demo topic, back it up to
# LocalDir, and print where the backup is. The server keeps running so the
# Web UI can be looked at; `make stop` (demo.sh --stop DATA_DIR) stops it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

if [[ ${1:-} == --stop ]]; then
  data=${2:-./kbr-data}
  if [[ -f $data/server.pid ]] && kill -0 "$(cat "$data/server.pid")" 2>/dev/null; then
    kill -INT "$(cat "$data/server.pid")"
    for _ in $(seq 60); do kill -0 "$(cat "$data/server.pid")" 2>/dev/null || break; sleep 0.5; done
    echo "kbr server stopped"
  else
    echo "no kbr server running from $data"
  fi
  rm -f "$data/server.pid"
  exit 0
fi

bin=$(realpath "${1:?usage: demo.sh BIN DATA_DIR}")
mkdir -p "${2:?usage: demo.sh BIN DATA_DIR}"
data=$(realpath "$2")
eval "$("$here/stack.sh" env)"
# The demo's ports and topic; tests and a second demo on one machine set their own.
port=${KBR_DEMO_PORT:-7233}
ui_port=${KBR_DEMO_UI_PORT:-8233}
metrics_addr=${KBR_DEMO_METRICS_ADDR:-127.0.0.1:9233}
topic=${KBR_DEMO_TOPIC:-demo}
records=${KBR_DEMO_RECORDS:-50000}

# 1. kbr server, unless one already runs from this data dir.
if [[ -f $data/server.pid ]] && kill -0 "$(cat "$data/server.pid")" 2>/dev/null; then
  echo "kbr server already running (pid $(cat "$data/server.pid"))"
else
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is taken by another process: stop it, or set KBR_DEMO_PORT (and KBR_DEMO_UI_PORT)"
    exit 1
  fi
  setsid "$bin" server --data-dir "$data" --port "$port" --ui-port "$ui_port" --metrics-addr "$metrics_addr" \
    >"$data/server.log" 2>&1 < /dev/null &
  echo $! >"$data/server.pid"
  for i in $(seq 120); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$(cat "$data/server.pid")" 2>/dev/null || { echo "kbr server exited:"; tail -30 "$data/server.log"; exit 1; }
    [[ $i == 120 ]] && { echo "kbr server did not answer on $port within 60s"; tail -30 "$data/server.log"; exit 1; }
    sleep 0.5
  done
  echo "kbr server started (pid $(cat "$data/server.pid")), log $data/server.log"
fi

# 2. A demo topic on the ZooKeeper-mode cluster, filled once: only after every
# broker serves every partition (leader and full ISR), with an idempotent,
# retrying producer, and counted at the end (deploy/demofill).
(cd "$root" && go run ./deploy/demofill -brokers "$KBR_ZKMODE_BOOTSTRAP" -topic "$topic" -records "$records")

# 3. The backup, watched live.
cfg=$data/demo-backup.yaml
cat >"$cfg" <<YAML
# Written by deploy/demo.sh. The same document works as the JSON input of
# BackupWorkflow (temporal workflow start --type BackupWorkflow --task-queue kbr).
cluster:
  name: zkmode-demo
  bootstrap_servers: [${KBR_ZKMODE_BOOTSTRAP//,/, }]
  zookeeper:
    connect: [$KBR_ZK_CONNECT]
    chroot: $KBR_ZK_CHROOT
task: demo
topics:
  include: ["$topic"]
target:
  type: LocalDir
  path: $data/LocalBackup
options:
  # MRS asks for 20 GiB free; the demo asks for 1 GiB so it runs on small disks.
  min_free_bytes: 1GiB
YAML
"$bin" backup run -f "$cfg" --address "127.0.0.1:$port"
echo
"$bin" backups list "$data/LocalBackup"
echo
echo "Web UI:  http://127.0.0.1:$ui_port   (runs carry the search attributes KbrCluster, KbrTask, KbrKind, KbrStatus)"
echo "Metrics: http://$metrics_addr/metrics"
echo "Config:  $cfg"
echo "Stop the server with: make stop"
