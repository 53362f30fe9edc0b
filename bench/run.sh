#!/usr/bin/env bash
# Load benchmark of the release server on PostgreSQL; prints a markdown table (and keeps it in
# bench/results/). One command, not part of the test suite:
#
#   bench/run.sh
#
# It builds `--release`, creates a fresh PostgreSQL database, starts the server on a free port,
# stops it and starts it again to time start-up on an already-migrated database, registers a
# user, seeds SEED_COUNT transactions through POST /api/v1/transactions with SEED_CLIENTS
# concurrent clients, then runs wrk (--latency) for DURATION seconds per scenario, reads the
# server's RSS from /proc (VmRSS idle after start, VmHWM peak), then seeds a second user with
# SYNC_COUNT transactions through POST /api/v1/sync/upload and measures the peak RSS of one
# GET /api/v1/sync/download and one full GET /api/v1/sync/pull against their response sizes,
# and runs `pgbench -S` on a scratch database at the same concurrencies for the database's own
# ceiling.
#
# Settings (environment):
#   PG_ADMIN_URL     PostgreSQL URL with rights to create databases
#                    (default postgres://postgres@127.0.0.1:5432/postgres)
#   DURATION         seconds per scenario (10)        THREADS   wrk and pgbench threads (2)
#   SEED_COUNT       transactions to seed (10000)     SEED_CLIENTS  concurrent seeding clients (4)
#   DB_MAX_CONNECTIONS  the server's pool size (10, the server's default)
#   PGBENCH_SCALE    pgbench -i scale (10)
#   SYNC_COUNT       transactions of the sync memory scenario's second user (50000; 0 skips it)
#   SYNC_BATCH       records per POST /api/v1/sync/upload when seeding it (5000)
#   BENCH_SCENARIOS  ';'-separated "METHOD PATH CONNECTIONS [BODY]" rows, BODY one of
#                    transaction|debt (default: the scenarios of the performance issue)
#   SKIP_BUILD=1     use the existing target/release/cashcraft
#   CASHCRAFT_BIN    benchmark this binary instead (no build; e.g. to try the script quickly)
#   KEEP_DB=1        keep the benchmark databases
#
# Needs: cargo, curl, python3, psql, pgbench, wrk (installed with apt-get when missing and root).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-2}"
SEED_COUNT="${SEED_COUNT:-10000}"
SEED_CLIENTS="${SEED_CLIENTS:-4}"
DB_MAX_CONNECTIONS="${DB_MAX_CONNECTIONS:-10}"
PGBENCH_SCALE="${PGBENCH_SCALE:-10}"
SYNC_COUNT="${SYNC_COUNT:-50000}"
SYNC_BATCH="${SYNC_BATCH:-5000}"
DEFAULT_SCENARIOS="GET /api/v1/accounts 64;GET /api/v1/transactions?limit=50 64;GET /api/v1/transactions/stats 64;GET /api/v1/transactions/stats 8;POST /api/v1/transactions 64 transaction"
BENCH_SCENARIOS="${BENCH_SCENARIOS:-$DEFAULT_SCENARIOS}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing wrk (Debian package)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
  fi
fi
for tool in cargo curl python3 psql pgbench wrk; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# --- scratch space and cleanup -------------------------------------------------------------
work="$(mktemp -d)"
stamp="$(date -u +%Y%m%d-%H%M%S)"
bench_db="cc_bench_${stamp//-/_}_$$"
pgbench_db="${bench_db}_pgbench"
server_pid=""
base_url="${PG_ADMIN_URL%/*}"

stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}

cleanup() {
  stop_server
  if [ "${KEEP_DB:-0}" != 1 ]; then
    psql "$PG_ADMIN_URL" -qAt -c "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)" >/dev/null 2>&1 || true
    psql "$PG_ADMIN_URL" -qAt -c "DROP DATABASE IF EXISTS $pgbench_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ---------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ] && [ -z "${CASHCRAFT_BIN:-}" ]; then
  say "building the release binary"
  cargo build --release --quiet
fi
bin="${CASHCRAFT_BIN:-$root/target/release/cashcraft}"
[ -x "$bin" ] || die "$bin is missing (build with cargo build --release)"

# --- database and server -------------------------------------------------------------------
say "creating database $bench_db"
psql "$PG_ADMIN_URL" -qAt -c "CREATE DATABASE $bench_db" >/dev/null
database_url="$base_url/$bench_db"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
secret() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }
jwt_secret="$(secret)"
encryption_key="$(secret)"

start_server() {
  # Started from the scratch directory so that no developer .env is read; the rate provider
  # points at a closed local port so that the start-up refresh never leaves the machine.
  (cd "$work" && exec env -i PATH="$PATH" HOME="$HOME" \
    NODE_ENV=production HOST=127.0.0.1 PORT="$port" DATABASE_URL="$database_url" \
    DB_MAX_CONNECTIONS="$DB_MAX_CONNECTIONS" JWT_SECRET="$jwt_secret" ENCRYPTION_KEY="$encryption_key" \
    JWT_EXPIRES_IN=2h LOG_FORMAT=json ${RUST_LOG:+RUST_LOG="$RUST_LOG"} \
    RATES_PROVIDER_URL=http://127.0.0.1:9 \
    "$bin" serve >>"$work/server.log" 2>&1) &
  server_pid=$!
}

say "first start: migrates the fresh database"
start_server
python3 "$here/bench.py" wait-ready "$url" "$(date +%s%N)" 60 >/dev/null || { tail -20 "$work/server.log" >&2; die "the server did not start"; }
stop_server

say "second start on the migrated database: time to ready"
start_ns="$(date +%s%N)"
start_server
ready_ms="$(python3 "$here/bench.py" wait-ready "$url" "$start_ns" 60)" || { tail -20 "$work/server.log" >&2; die "the server did not start"; }
sleep 1
kib() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$server_pid/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
rss_idle_kib="$(kib VmRSS)"

# --- user and data -------------------------------------------------------------------------
token="$(python3 "$here/bench.py" register "$url")"
account_id="$(curl -fsS -H "Authorization: Bearer $token" "$url/api/v1/accounts" 2>/dev/null \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])' 2>/dev/null || true)"
if [ -z "$account_id" ]; then
  # GET /api/v1/accounts is not answering: read the default account from the database.
  account_id="$(psql "$database_url" -qAt -c "SELECT id FROM accounts ORDER BY created_at LIMIT 1")"
fi

seed_seconds="-"; seed_rate="-"
if [ "$SEED_COUNT" -gt 0 ]; then
  say "seeding $SEED_COUNT transactions through POST /api/v1/transactions ($SEED_CLIENTS clients)"
  read -r seed_seconds seed_rate < <(python3 "$here/bench.py" seed "$url" "$token" "$account_id" "$SEED_COUNT" "$SEED_CLIENTS") \
    || die "seeding failed"
  [ -n "$seed_rate" ] || die "seeding failed"
fi
psql "$database_url" -qAt -c "VACUUM ANALYZE" >/dev/null

# --- HTTP scenarios ------------------------------------------------------------------------
results="$work/results.tsv"
: >"$results"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
now_iso="$(date -u +%Y-%m-%dT%H:%M:%S.000Z)"
body_for() {
  case "$1" in
    "") echo "" ;;
    transaction) echo "{\"accountId\":\"$account_id\",\"amount\":12.34,\"type\":\"expense\",\"date\":\"$now_iso\",\"description\":\"bench\"}" ;;
    debt) echo '{"type":"owed_to_me","name":"bench","amount":12.34}' ;;
    *) die "unknown body kind $1" ;;
  esac
}
concurrencies=()
IFS=';' read -r -a scenarios <<<"$BENCH_SCENARIOS"
for scenario in "${scenarios[@]}"; do
  read -r method path conns body_kind <<<"$scenario"
  [ -n "${conns:-}" ] || die "bad scenario '$scenario'"
  body="$(body_for "${body_kind:-}")"
  # One request first: a scenario that fails outright is reported, not measured.
  curl_args=(-s -o /dev/null -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token")
  [ -z "$body" ] || curl_args+=(-H 'Content-Type: application/json' --data "$body")
  check="$(curl "${curl_args[@]}" "$url$path")"
  case "$check" in 2??) ;; *) say "warning: $method $path answers $check" ;; esac
  say "wrk $method $path, $conns connections, ${DURATION}s"
  line="$(BENCH_TOKEN="$token" BENCH_METHOD="$method" BENCH_BODY="$body" \
    wrk -t"$THREADS" -c"$conns" -d"${DURATION}s" --latency -s "$here/request.lua" "$url$path" | grep '^BENCH_RESULT')" \
    || die "wrk failed for $method $path"
  printf '%s %s\t%s\t%s\n' "$method" "$path" "$conns" "$(cut -f2- <<<"$line")" >>"$results"
  case " ${concurrencies[*]-} " in *" $conns "*) ;; *) concurrencies+=("$conns") ;; esac
done
rss_peak_kib="$(kib VmHWM)"

# --- sync memory ---------------------------------------------------------------------------
# A second user with SYNC_COUNT transactions; the peak RSS (VmHWM, reset through clear_refs just
# before) of one full download and one full pull, against the size of each response.
if [ "$SYNC_COUNT" -gt 0 ]; then
  sync_token="$(python3 "$here/bench.py" register "$url")"
  sync_account="$(curl -fsS -H "Authorization: Bearer $sync_token" "$url/api/v1/accounts" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')"
  say "seeding $SYNC_COUNT transactions of a second user through POST /api/v1/sync/upload ($SYNC_BATCH a request)"
  sync_seed_seconds="$(python3 "$here/bench.py" sync-seed "$url" "$sync_token" "$sync_account" "$SYNC_COUNT" "$SYNC_BATCH")" \
    || die "sync seeding failed"
  psql "$database_url" -qAt -c "VACUUM ANALYZE" >/dev/null
  {
    echo "sync_count=$SYNC_COUNT"
    echo "sync_batch=$SYNC_BATCH"
    echo "sync_seed_seconds=$sync_seed_seconds"
  } >>"$work/meta"
  for kind in download pull; do
    case "$kind" in
      download) sync_path="/api/v1/sync/download" ;;
      pull) sync_path="/api/v1/sync/pull?last_pulled_at=null" ;;
    esac
    sleep 1
    rss_before="$(kib VmRSS)"
    # "5" resets the peak RSS to the current RSS (proc(5), /proc/<pid>/clear_refs).
    echo 5 >"/proc/$server_pid/clear_refs" 2>/dev/null || say "warning: cannot reset the peak RSS; the sync rows show the peak since start"
    say "GET $sync_path"
    size="$(curl -fsS -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $sync_token" "$url$sync_path")" \
      || die "GET $sync_path failed"
    {
      echo "sync_${kind}_bytes=$size"
      echo "sync_${kind}_rss_kib=$rss_before"
      echo "sync_${kind}_hwm_kib=$(kib VmHWM)"
    } >>"$work/meta"
  done
fi
stop_server

# --- the database's own ceiling ------------------------------------------------------------
say "pgbench -i -s $PGBENCH_SCALE on a scratch database"
psql "$PG_ADMIN_URL" -qAt -c "CREATE DATABASE $pgbench_db" >/dev/null
pgbench -i -q -s "$PGBENCH_SCALE" "$base_url/$pgbench_db" >/dev/null 2>&1
meta="$work/meta"
touch "$meta"
for conns in "${concurrencies[@]}"; do
  jobs=$(( THREADS < conns ? THREADS : conns ))
  say "pgbench -S -c $conns -j $jobs -T $DURATION"
  tps="$(pgbench -S -c "$conns" -j "$jobs" -T "$DURATION" "$base_url/$pgbench_db" 2>/dev/null \
    | awk '/^tps = / {print $3; exit}')"
  echo "pgbench_tps_$conns=$tps" >>"$meta"
done

# --- report --------------------------------------------------------------------------------
{
  echo "date=$(date -u +%Y-%m-%d)"
  if [ -n "${CASHCRAFT_BIN:-}" ]; then echo "binary=Binary $CASHCRAFT_BIN at"; else echo "binary=Release build"; fi
  echo "rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+dirty')"
  echo "pg_version=$(psql "$PG_ADMIN_URL" -qAt -c 'SHOW server_version' | cut -d' ' -f1)"
  echo "cpu=$(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo))"
  echo "seeded=$SEED_COUNT"
  echo "seed_seconds=$seed_seconds"
  echo "seed_rate=$seed_rate"
  echo "db_max_connections=$DB_MAX_CONNECTIONS"
  echo "duration=$DURATION"
  echo "threads=$THREADS"
  echo "load=$load_before"
  echo "ready_ms=$ready_ms"
  echo "rss_idle_mib=$(mib "$rss_idle_kib")"
  echo "rss_peak_mib=$(mib "$rss_peak_kib")"
} >>"$meta"
mkdir -p "$here/results"
python3 "$here/bench.py" report "$results" "$meta" | tee "$here/results/$stamp.md"
