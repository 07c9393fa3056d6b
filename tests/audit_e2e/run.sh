#!/usr/bin/env bash
# `roomguard audit` end to end: the real binary against a real Synapse (no roomguard module) seeded with exposed and
# private rooms, markings and ordinary text, files of several formats; the HTML report opened in headless Chromium
# (tests/audit_e2e/). Every process the tests start records its pid; the trap below stops whatever is left, by pid,
# however pytest ends.
#
# Environment:
#   ROOMGUARD_BIN               the roomguard binary (default: target/debug/roomguard of this checkout)
#   ROOMGUARD_POLICIES          the policy directory (default: policies/ of this checkout)
#   PYTHON                      an interpreter with pytest, pyyaml, grpcio, matrix-synapse, selenium and the document
#                               producers of tests/python/requirements.txt (default: .venv)
#   ROOMGUARD_AUDIT_ARTIFACTS   where the HTML report and its screenshot are kept (default: target/audit-e2e)
#   PYTEST_ARGS                 extra pytest arguments (e.g. "-x -k resume"); so are run.sh's own arguments
# Chromium and ChromeDriver (Debian's chromium and chromium-driver) must be at /usr/bin, or named by ROOMGUARD_CHROMIUM
# and ROOMGUARD_CHROMEDRIVER.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOMGUARD_BIN="${ROOMGUARD_BIN:-$repo/target/debug/roomguard}"
export ROOMGUARD_POLICIES="${ROOMGUARD_POLICIES:-$repo/policies}"
export ROOMGUARD_AUDIT_ARTIFACTS="${ROOMGUARD_AUDIT_ARTIFACTS:-$repo/target/audit-e2e}"
PYTHON="${PYTHON:-$repo/.venv/bin/python}"
[[ -x "$ROOMGUARD_BIN" ]] || { echo "run.sh: ROOMGUARD_BIN=$ROOMGUARD_BIN is not an executable file" >&2; exit 2; }
[[ -x "$PYTHON" ]] || { echo "run.sh: PYTHON=$PYTHON is not an executable file" >&2; exit 2; }

work="$(mktemp -d -t roomguard-audit-e2e.XXXXXX)"
export ROOMGUARD_TEST_PIDDIR="$work/pids"
mkdir -p "$ROOMGUARD_TEST_PIDDIR"
pytest_pid=""

cleanup() {
  local status=$?
  if [[ -n "$pytest_pid" ]] && kill -0 "$pytest_pid" 2>/dev/null; then
    kill -TERM "$pytest_pid" 2>/dev/null || true
    wait "$pytest_pid" 2>/dev/null || true
  fi
  for pidfile in "$ROOMGUARD_TEST_PIDDIR"/*.pid; do
    [[ -e "$pidfile" ]] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -CONT "$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [[ $status -eq 0 || -z "${KEEP_TEST_DIRS:-}" ]]; then rm -rf "$work"; else echo "run.sh: test directories kept in $work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$repo"
ROOMGUARD_REQUIRE_E2E=1 "$PYTHON" -m pytest -p no:cacheprovider tests/audit_e2e --basetemp="$work/pytest" ${PYTEST_ARGS:-} "$@" &
pytest_pid=$!
wait "$pytest_pid"
