#!/usr/bin/env bash
# The engine suite on every supported PostgreSQL, one cluster per version, and a table
# version x suite at the end.
#
#   scripts/test-matrix.sh [MAJOR ...]       # default: 14 15 16 17 18
#
# Server binaries come from scripts/pg-versions.sh (fetched once, cached under target/).
# Each suite is a test binary; a cell is `ok N` (tests passed) or `FAIL` (its log is kept
# under target/test-matrix/<major>-<suite>.log). Exit status 1 when any cell failed.
set -uo pipefail

cd "$(dirname "$0")/.."
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(14 15 16 17 18)

# The engine suite: lifecycle, dual writes, safety (lock timeouts, kill and resume),
# regressions, the workload matrix, partitioned tables, flags and gates, the
# plan-vs-pg_locks check, the planner snapshots;
# from the CLI: SIGKILL at every step and during a backfill, and the 56 pgroll examples.
engine_suites=(lifecycle dualwrite safety regressions workload_matrix partitions flags plan_locks planner_snapshots)
cli_filters=(sigkill migrate_applies_all_56_pgroll_examples)

logs=target/test-matrix
mkdir -p "$logs"
declare -A cell
failed=0

# Build once; the runs below only execute.
cargo test -p ratchet-engine --no-run >/dev/null 2>&1 || cargo test -p ratchet-engine --no-run
cargo test -p ratchet --test engine_cli --no-run >/dev/null 2>&1 || cargo test -p ratchet --test engine_cli --no-run

run_cell() {
  local major=$1 suite=$2 bin=$3
  shift 3
  local log="$logs/$major-$suite.log"
  if RATCHET_PG_BIN="$bin" "$@" >"$log" 2>&1; then
    local n
    n=$(grep -E '^test result: ok\.' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s += $1} END {print s + 0}')
    cell[$major,$suite]="ok ${n:-0}"
  else
    cell[$major,$suite]="FAIL"
    failed=1
  fi
  echo "PostgreSQL $major  $suite: ${cell[$major,$suite]}" >&2
}

while read -r major bin; do
  for s in "${engine_suites[@]}"; do
    run_cell "$major" "$s" "$bin" cargo test -q -p ratchet-engine --test "$s"
  done
  run_cell "$major" cli "$bin" cargo test -q -p ratchet --test engine_cli -- "${cli_filters[@]}"
done < <(./scripts/pg-versions.sh "${majors[@]}")

suites=("${engine_suites[@]}" cli)
printf '\n%-18s' "suite"
for major in "${majors[@]}"; do printf '%-10s' "PG $major"; done
printf '\n'
for s in "${suites[@]}"; do
  printf '%-18s' "$s"
  for major in "${majors[@]}"; do printf '%-10s' "${cell[$major,$s]:-skipped}"; done
  printf '\n'
done
exit $failed
