#!/usr/bin/env bash
# Chaos benchmark: smoke runs on PostgreSQL + Azurite with two `pipeline worker` processes, one of which is killed at
# a random moment (SIGKILL, then SIGTERM) N times and restarted each time. When every run has finished it prints runs
# completed, attempts per stage kind, what each kill hit and the work it lost, and whether any artifact was lost,
# corrupt or duplicated, with the sha256 of every blob recomputed by an independent REST client
# (bench/chaos_report.py). Exit code: 0 when every run succeeded and no artifact was lost/corrupt/duplicated, 1 if not,
# 2 for bad arguments. See bench/README.md, "Chaos: workers killed mid-run".
#
#   bench/chaos.sh                       20 kills: SIGKILL for the first half, SIGTERM for the second
#   bench/chaos.sh --kills 6 --signal TERM --seed 7
#
# Options: --kills N [20]  --signal mixed|KILL|TERM [mixed]  --concurrent-runs N [2] (smoke runs kept in flight)
#          --min-gap S --max-gap S [5, 30] (random wait before each kill)  --restart-pause S [2]  --seed N [$RANDOM]
#          --finish-timeout S [1800] (after the last kill)  --out DIR [a new /tmp/pipeline-chaos.XXXXXX]  --no-build
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../scripts/lib/services.sh
source "$REPO_ROOT/scripts/lib/services.sh"

KILLS=20
SIGNAL=mixed
CONCURRENT_RUNS=2
MIN_GAP=5
MAX_GAP=30
RESTART_PAUSE=2
SEED=$RANDOM
FINISH_TIMEOUT=1800
OUT=""
BUILD=1
DB=chaos
WORKERS=(chaos-a chaos-b)
GRACE_SECONDS=10

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case $1 in
    --kills) KILLS=$2; shift 2 ;;
    --signal) SIGNAL=$2; shift 2 ;;
    --concurrent-runs) CONCURRENT_RUNS=$2; shift 2 ;;
    --min-gap) MIN_GAP=$2; shift 2 ;;
    --max-gap) MAX_GAP=$2; shift 2 ;;
    --restart-pause) RESTART_PAUSE=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --finish-timeout) FINISH_TIMEOUT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage ;;
    *) echo "unknown argument '$1'" >&2; usage ;;
  esac
done
for n in "$KILLS" "$CONCURRENT_RUNS" "$MIN_GAP" "$MAX_GAP" "$RESTART_PAUSE" "$SEED" "$FINISH_TIMEOUT"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "'$n' must be a whole number" >&2; exit 2; }
done
[[ $SIGNAL =~ ^(mixed|KILL|TERM)$ ]] || { echo "--signal must be mixed, KILL or TERM, got '$SIGNAL'" >&2; exit 2; }
((MAX_GAP >= MIN_GAP && CONCURRENT_RUNS >= 1)) || { echo "--max-gap must be >= --min-gap and --concurrent-runs >= 1" >&2; exit 2; }
RANDOM=$SEED

log() { printf '[chaos %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
load1() { cut -d' ' -f1 /proc/loadavg; }

OUT=${OUT:-$(mktemp -d /tmp/pipeline-chaos.XXXXXX)}
mkdir -p "$OUT/workers" "$OUT/data"
BIN="$REPO_ROOT/src/Jobs/bin/Release/net10.0/linux-x64"
declare -A WORKER_PID=()

# Whatever happens: no worker outlives the script, the services stop, the scratch data goes; logs and report stay.
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local name
  for name in "${!WORKER_PID[@]}"; do
    kill -KILL "${WORKER_PID[$name]}" 2>/dev/null || true
    wait "${WORKER_PID[$name]}" 2>/dev/null || true
  done
  services_stop
  rm -rf "$OUT/data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# psql with the SQL on stdin, so :'name' variables can be passed as name=value arguments.
q() {
  local sql=$1 vars=() v
  shift
  for v in "$@"; do vars+=(-v "$v"); done
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$DB" -AtqX -F $'\t' -v ON_ERROR_STOP=1 "${vars[@]}" <<<"$sql"
}

# The stage a worker is running right now (fresh heartbeat), one tab-separated line, or nothing.
read -r -d '' BUSY_SQL <<'SQL' || true
SELECT "Id", "RunId", "Name", "Kind", "Attempt", replace(coalesce(nullif("ProgressMessage", ''), '-'), E'\t', ' '), extract(epoch FROM "StartedAt"),
       extract(epoch FROM "HeartbeatAt")
FROM pipeline.stages
WHERE "Status" = 'Running' AND "Worker" = :'worker' AND "HeartbeatAt" > now() - interval '3 seconds'
ORDER BY "Id" LIMIT 1
SQL
read -r -d '' UNFINISHED_SQL <<'SQL' || true
SELECT count(*) FROM pipeline.runs WHERE "Status" IN ('Pending', 'Running')
SQL

worker_alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

start_worker() {
  local name=$1
  printf '### %s started at %s\n' "$name" "$(date -u +%FT%T.%NZ)" >>"$OUT/workers/$name.log"
  Pipeline__WorkerName=$name dotnet "$BIN/pipeline.dll" worker --queues gpu,cpu,default --workers 1 >>"$OUT/workers/$name.log" 2>&1 &
  WORKER_PID[$name]=$!
  log "worker $name started (pid ${WORKER_PID[$name]})"
}

LAUNCHED=0
launch_run() {
  local seed=$((1000 + LAUNCHED)) out id
  # A distinct shard seed per run: no run is a cache hit or a same-key twin of another. One torch thread per stage,
  # so that the two workers share the 2 cores instead of thrashing.
  out=$(dotnet "$BIN/pipeline.dll" run --preset smoke --no-cache --json \
    --set "stages.shards.params.seed=$seed" --set stages.shards.params.threads=1 \
    --set stages.basenet.params.threads=1 --set stages.rgc.params.threads=1 \
    --set stages.monkey.params.threads=1 --set stages.rgc-neural.params.threads=1 2>>"$OUT/launch.log") \
    || { log "pipeline run failed (see $OUT/launch.log)"; return 1; }
  id=$(grep -o '"id": *[0-9]*' <<<"$out" | grep -o '[0-9]*$')
  LAUNCHED=$((LAUNCHED + 1))
  printf '%s\t%s\t%s\n' "$id" "$seed" "$(now)" >>"$OUT/runs.tsv"
  log "run $id launched (shard seed $seed)"
}

top_up_runs() {
  local unfinished
  unfinished=$(q "$UNFINISHED_SQL")
  while ((unfinished < CONCURRENT_RUNS)); do
    launch_run
    unfinished=$((unfinished + 1))
  done
}

signal_of() {
  if [[ $SIGNAL != mixed ]]; then echo "$SIGNAL"
  elif (($1 <= (KILLS + 1) / 2)); then echo KILL
  else echo TERM
  fi
}

# --- set up ---------------------------------------------------------------------------------------------------------
services_install_packages
services_install_node_modules
if ((BUILD)); then
  log "dotnet build src/Jobs -c Release"
  dotnet build "$REPO_ROOT/src/Jobs" -c Release -nologo -v q >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log" >&2; exit 1; }
fi
[[ -f $BIN/pipeline.dll ]] || { echo "$BIN/pipeline.dll is missing: build src/Jobs in Release first" >&2; exit 1; }
services_start
PG_PORT=$(sed -E 's/.*Port=([0-9]+).*/\1/' <<<"$PIPELINE_TEST_POSTGRES")
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qX -c "CREATE DATABASE $DB" >/dev/null

export ConnectionStrings__Postgres="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=$DB"
export ConnectionStrings__Blobs="$PIPELINE_TEST_BLOBS"
export Pipeline__BlobContainer=$DB
export Pipeline__DataFolder="$OUT/data"
export Pipeline__HeartbeatInterval=00:00:01
export Pipeline__HeartbeatTimeout=00:00:06
export Pipeline__ReconcileInterval=00:00:02
export Pipeline__ShutdownGracePeriod=00:00:$GRACE_SECONDS
export Pipeline__LogFormat=json

{
  echo "date: $(date -u +%FT%TZ), commit $(git -C "$REPO_ROOT" rev-parse --short HEAD)"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), AVX-512: $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//;s/^$/none/')"
  echo "kills: $KILLS, signal $SIGNAL, seed $SEED, gaps ${MIN_GAP}-${MAX_GAP} s, restart pause ${RESTART_PAUSE} s, $CONCURRENT_RUNS runs in flight, workers ${WORKERS[*]}"
  echo "settings: heartbeat 1 s, heartbeat timeout 6 s, reconcile 2 s, shutdown grace ${GRACE_SECONDS} s; smoke preset, one torch thread per stage"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

for w in "${WORKERS[@]}"; do start_worker "$w"; done
# The workers create the run store's tables as they start.
for ((i = 0; i < 240; i++)); do
  [[ $(q "SELECT to_regclass('pipeline.runs') IS NOT NULL") == t ]] && break
  sleep 0.5
done
printf 'n\tsignal\tworker\tpid\tat\tstage_id\trun_id\tstage\tkind\tattempt\tprogress\tstarted_at\theartbeat_at\texited_after\texit_code\tload1\tforced\n' \
  >"$OUT/kills.tsv"

# --- the kills ------------------------------------------------------------------------------------------------------
for ((k = 1; k <= KILLS; k++)); do
  # A worker that died without being killed is a finding of its own: logged, then restarted.
  for w in "${WORKERS[@]}"; do
    if ! worker_alive "${WORKER_PID[$w]}"; then
      code=0
      wait "${WORKER_PID[$w]}" 2>/dev/null || code=$?
      log "worker $w exited by itself (exit code $code)" 2>&1 | tee -a "$OUT/unexpected-exits.log" >&2
      start_worker "$w"
    fi
  done
  top_up_runs
  gap="$((MIN_GAP + RANDOM % (MAX_GAP - MIN_GAP + 1))).$((RANDOM % 10))"
  sleep "$gap"
  sig=$(signal_of "$k")

  # A random worker among those running a stage now; if both are idle (between stages), wait up to 30 s for one.
  victim="" stage=""
  for ((tries = 0; tries < 30; tries++)); do
    busy=()
    for w in "${WORKERS[@]}"; do
      [[ -n $(q "$BUSY_SQL" worker="$w") ]] && busy+=("$w")
    done
    if ((${#busy[@]})); then victim=${busy[RANDOM % ${#busy[@]}]}; break; fi
    sleep 1
  done
  [[ -n $victim ]] || victim=${WORKERS[RANDOM % ${#WORKERS[@]}]}
  pid=${WORKER_PID[$victim]}
  stage=$(q "$BUSY_SQL" worker="$victim")
  s_id="" s_run="" s_name="" s_kind="" s_attempt="" s_progress="" s_started="" s_beat=""
  if [[ -n $stage ]]; then IFS=$'\t' read -r s_id s_run s_name s_kind s_attempt s_progress s_started s_beat <<<"$stage"; fi
  at=$(now)
  kill -s "$sig" "$pid" 2>/dev/null || log "worker $victim (pid $pid) was already gone"
  log "kill $k/$KILLS: SIG$sig to $victim (pid $pid) running ${s_name:-nothing}${s_run:+ of run $s_run}${s_progress:+ ($s_progress)}"

  # SIGKILL ends it at once; SIGTERM gets the grace period plus the host's own shutdown, then SIGKILL.
  deadline=$((SECONDS + GRACE_SECONDS + 30)) forced=""
  while worker_alive "$pid"; do
    if [[ -z $forced ]] && ((SECONDS >= deadline)); then
      log "$victim did not exit within $((GRACE_SECONDS + 30)) s of SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      forced=yes
    fi
    sleep 0.1
  done
  exited=$(now)
  code=0
  wait "$pid" 2>/dev/null || code=$?
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$sig" "$victim" "$pid" "$at" "$s_id" "$s_run" "$s_name" \
    "$s_kind" "$s_attempt" "$s_progress" "$s_started" "$s_beat" "$(awk -v a="$at" -v b="$exited" 'BEGIN { printf "%.2f", b - a }')" "$code" "$(load1)" "$forced" \
    >>"$OUT/kills.tsv"
  unset 'WORKER_PID[$victim]'
  sleep "$RESTART_PAUSE"
  start_worker "$victim"
done

# --- wait for every run, then stop the workers gracefully -----------------------------------------------------------
log "all $KILLS kills done; waiting for the $LAUNCHED runs to finish (at most $FINISH_TIMEOUT s)"
deadline=$((SECONDS + FINISH_TIMEOUT))
while (($(q "$UNFINISHED_SQL") > 0)); do
  if ((SECONDS >= deadline)); then log "runs still unfinished after $FINISH_TIMEOUT s: reporting them as stuck"; break; fi
  sleep 5
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
for w in "${!WORKER_PID[@]}"; do kill -TERM "${WORKER_PID[$w]}" 2>/dev/null || true; done
for w in "${!WORKER_PID[@]}"; do wait "${WORKER_PID[$w]}" 2>/dev/null || true; unset 'WORKER_PID[$w]'; done

rc=0
/usr/bin/python3 "$REPO_ROOT/bench/chaos_report.py" --out "$OUT" --pg-port "$PG_PORT" --db "$DB" --blobs "$PIPELINE_TEST_BLOBS" --container "$DB" \
  | tee "$OUT/report.txt" || rc=$?
log "logs, kill log and report in $OUT"
exit "$rc"
