#!/usr/bin/env bash
# Instructions PostgreSQL executes for one route decision, counted by callgrind: a count, not a
# time, so it repeats exactly however busy the machine is (wall-clock runs of bench_routing move by
# +-5 % here, more than most single changes are worth). Seeds a throwaway cluster with
# bench_routing (10,000 operators, database kept), optionally applies an experiment, stops the
# cluster, then runs N1 and N2 decisions (the statement the router sends: offer_call with the
# screen pop) on a single-user backend under callgrind, each on a fresh copy of the cluster; the
# difference divided by N2 - N1 is one decision, start-up excluded.
#
#   bench/decision_instructions.sh build/rel/bench/bench_routing [experiment.sql] [N1] [N2]
#   SWITCHBOARD_BENCH_WITHOUT=0052 bench/decision_instructions.sh ...   (a migration left out)
#   DECISION_FUNCTION=offer_call_fast DECISION_QUEUE_STEP=5 bench/decision_instructions.sh ... \
#     bench/experiments/one_statement_decision.sql   (another decision function, called the same
#     way, on every 5th queue only: the seed's longest-idle queues)
#   DECISION_CALLGRIND_DIR=/tmp/cg bench/decision_instructions.sh ...   (keeps the two callgrind
#     profiles as callgrind.N1.out and callgrind.N2.out there, for callgrind_annotate: the
#     difference of a function's inclusive count divided by N2 - N1 is its share of one decision)
#
# Needs valgrind and PostgreSQL's server binaries; run as root (the backend runs as postgres) or as
# the user who owns the cluster. Figures in docs/benchmarks.md ("## Routing").
set -euo pipefail
cd "$(dirname "$0")/.."

bench_routing=${1:?usage: bench/decision_instructions.sh BENCH_ROUTING [experiment.sql] [N1] [N2]}
experiment=${2:-}
n1=${3:-20}
n2=${4:-60}
postgres=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)/postgres
[ -x "$postgres" ] || postgres=/usr/lib/postgresql/15/bin/postgres
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }

work=$(mktemp -d /tmp/sb-instructions.XXXXXX)
chmod 777 "$work"  # the backend (user postgres) writes its callgrind output here
as_owner() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
cleanup() {
  scripts/pg stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

scripts/pg start "$work/pg" >/dev/null
url=$(scripts/pg url "$work/pg")
echo "seeding with $bench_routing (10,000 operators)" >&2
kept=$(SWITCHBOARD_BENCH_DATABASE_URL=$url SWITCHBOARD_BENCH_KEEP=1 SWITCHBOARD_BENCH_OPERATORS=10000 \
  "$bench_routing" 2>&1 | sed -n 's/.*database kept: //p')
[ -n "$kept" ] || { echo "bench_routing kept no database" >&2; exit 1; }
database=$(echo "$kept" | sed -E 's|^postgresql:///([^?]*).*|\1|')
if [ -n "$experiment" ]; then
  psql "$kept" -q -v ON_ERROR_STOP=1 -f "$experiment" >/dev/null
fi
psql "$kept" -q -c "UPDATE presence SET state = 'ready', current_call_id = NULL, reserved_until = NULL
                      WHERE state <> 'ready'" -c "VACUUM ANALYZE" >/dev/null
scripts/pg stop "$work/pg" >/dev/null

# N decisions as the single-user backend reads them (-j: a statement ends with ";" and a blank line);
# the statement is offer_sql of src/store/routing_queries.cpp, the offers those of bench_routing
decisions() {
  printf "PREPARE decide(text, text, text, int, text) AS SELECT d.*, p.customer, p.customer_read FROM ${DECISION_FUNCTION:-offer_call}(\$1, \$2, \$3, '800', jsonb_build_object('account', \$4::text, 'menu', \$5), 'bench', 60) d, checked_screen_pop(CASE WHEN d.kind = 'operator' THEN d.call_id END) p;\n\n"
  for i in $(seq 1 "$1"); do
    local step=${DECISION_QUEUE_STEP:-1}
    local q=$((((i * 7) % (50 / step)) * step + step))
    printf "EXECUTE decide('rp%d', 'cg-%d', '+1%d', %d, '%d');\n\n" $q "$i" $(((i * 7919) % 10000 + 1)) "$i" $q
  done
}

# Instructions of a backend that runs N decisions on a fresh copy of the stopped cluster.
instructions() {
  local run=$work/run-$1
  cp -a "$work/pg/data" "$run"
  decisions "$1" >"$work/input-$1.sql"
  chmod 644 "$work/input-$1.sql"
  as_owner valgrind --tool=callgrind --callgrind-out-file="$run.out" "$postgres" --single -j -D "$run" \
    -c shared_preload_libraries= -c fsync=off "$database" <"$work/input-$1.sql" >"$run.log" 2>&1
  local served
  served=$(grep -c 'kind = "operator"' "$run.log" || true)
  if [ "$served" -ne "$1" ]; then
    echo "$served of $1 decisions reserved an operator; the backend said:" >&2
    tail -n 20 "$run.log" >&2
    exit 1
  fi
  sed -n 's/^totals: //p; s/^summary: //p' "$run.out" | head -1
  if [ -n "${DECISION_CALLGRIND_DIR:-}" ]; then
    mkdir -p "$DECISION_CALLGRIND_DIR"
    cp "$run.out" "$DECISION_CALLGRIND_DIR/callgrind.$1.out"
  fi
  rm -rf "$run"
}

a=$(instructions "$n1")
b=$(instructions "$n2")
label="${experiment:-as migrated}${SWITCHBOARD_BENCH_WITHOUT:+, without ${SWITCHBOARD_BENCH_WITHOUT}}"
echo "$(((b - a) / (n2 - n1))) instructions per route decision ($label; $n1 and $n2 decisions: $a and $b)"
