#!/usr/bin/env bash
# Test the Synapse module: unit tests, then the end-to-end scenarios against a real Synapse and a real roomguard.
#
# Environment:
#   ROOMGUARD_BIN       absolute path of the built roomguard binary (required)
#   ROOMGUARD_POLICIES  the policy directory to copy for the tests (default: ../policies next to this directory)
#   PYTHON              interpreter of a virtualenv to install into and run with (default: python3 -m venv .venv here)
#   PYTEST_ARGS         extra pytest arguments (e.g. "-x -k publish")
#
# Installs `synapse-module[test]` (pinned Synapse, grpcio, pytest) into that virtualenv once; later runs skip the install
# while pyproject.toml is unchanged. Synapse and roomguard are started by the pytest fixtures on free loopback ports in
# temporary directories; each records its pid, and the trap below stops whatever is left, by pid, however pytest ends.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

: "${ROOMGUARD_BIN:?ROOMGUARD_BIN must be the absolute path of the roomguard binary}"
[[ -x "$ROOMGUARD_BIN" ]] || { echo "run-tests.sh: ROOMGUARD_BIN=$ROOMGUARD_BIN is not an executable file" >&2; exit 2; }
export ROOMGUARD_BIN
export ROOMGUARD_POLICIES="${ROOMGUARD_POLICIES:-$here/../policies}"
[[ -d "$ROOMGUARD_POLICIES" ]] || { echo "run-tests.sh: ROOMGUARD_POLICIES=$ROOMGUARD_POLICIES is not a directory" >&2; exit 2; }

if [[ -z "${PYTHON:-}" ]]; then
  [[ -x "$here/.venv/bin/python" ]] || python3 -m venv "$here/.venv"
  PYTHON="$here/.venv/bin/python"
fi

# --- install (idempotent) ---
stamp="$("$PYTHON" -c 'import sys; print(sys.prefix)')/.synapse-roomguard-test-stamp"
want="$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1) $here"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]] \
  || ! "$PYTHON" -c 'import synapse_roomguard, synapse, grpc_tools, grpc_health, pytest' 2>/dev/null; then
  echo "run-tests.sh: installing synapse-module[test] into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$PYTHON" -m pip install --quiet --disable-pip-version-check -e "$here[test]"
  echo "$want" > "$stamp"
fi

# --- run, and clean up every process the tests started, whatever happens ---
work="$(mktemp -d -t synapse-roomguard-tests.XXXXXX)"
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
      kill -CONT "$pid" 2>/dev/null || true  # a test may have paused roomguard with SIGSTOP
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [[ $status -eq 0 || -z "${KEEP_TEST_DIRS:-}" ]]; then rm -rf "$work"; else echo "run-tests.sh: test directories kept in $work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$here"
# The unit tests and the end-to-end suite in one run (one closing "N passed" line); a missing binary is a failure here.
ROOMGUARD_REQUIRE_E2E=1 "$PYTHON" -m pytest tests --basetemp="$work/pytest" ${PYTEST_ARGS:-} &
pytest_pid=$!
wait "$pytest_pid"
