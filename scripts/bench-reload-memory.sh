#!/usr/bin/env bash
# Memory of the role table across hot reloads: a copy of policies/ with a 1,000,000-line users.csv, served by a
# release roomguard; prints the resident set (VmRSS) once loaded and after each of 4 reloads, and the peak (VmHWM).
#
#   cargo build --release && scripts/bench-reload-memory.sh [rules|users|rewrite]
#
# `rules` (default) edits rules.csv before each reload (the role table is kept); `users` appends a line to users.csv
# (the shard of the new user is rebuilt, the others are shared); `rewrite` rewrites every line of users.csv (every
# shard is rebuilt while the old table serves: the worst case).
set -euo pipefail
cd "$(dirname "$0")/.."
edit="${1:-rules}"
bin="${ROOMGUARD_BIN:-target/release/roomguard}"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r policies "$work/p"
python3 -c "
with open('$work/p/users.csv', 'w') as f:
    for i in range(1_000_000):
        f.write(f'@user{i}:agent.tchap.gouv.fr, external\n')
"
"$bin" serve --listen 127.0.0.1:0 --policies "$work/p" --decision-log off 2>"$work/log" &
pid=$!
for _ in $(seq 1 120); do grep -q 'listening' "$work/log" && break; sleep 0.5; done
sleep 1
loaded=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
echo "loaded:          $(grep VmRSS /proc/$pid/status)"
for r in $(seq 1 "${ROUNDS:-4}"); do
  if [ "$edit" = users ]; then
    echo "@extra$r:agent.tchap.gouv.fr, agent" >> "$work/p/users.csv"
  elif [ "$edit" = rewrite ]; then
    python3 -c "
with open('$work/users.new', 'w') as f:
    for i in range(1_000_000):
        f.write(f'@user{i}:agent.tchap.gouv.fr, {\"agent\" if (i + $r) % 2 else \"external\"}\n')
"
    mv "$work/users.new" "$work/p/users.csv"
  else
    echo "# edit $r" >> "$work/p/rules.csv"
  fi
  before=$(grep -c 'policy reloaded' "$work/log" || true)
  kill -HUP "$pid"
  for _ in $(seq 1 120); do
    [ "$(grep -c 'policy reloaded' "$work/log" || true)" -gt "$before" ] && break
    sleep 0.25
  done
  sleep 0.5
  echo "after reload $r:  $(grep VmRSS /proc/$pid/status)  $(grep VmHWM /proc/$pid/status)"
  # A reload that was refused or never finished would make the figures meaningless.
  [ "$(grep -c 'policy reloaded' "$work/log" || true)" -gt "$before" ] || { echo "reload $r did not finish" >&2; exit 1; }
done
peak=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status)
awk -v l="$loaded" -v p="$peak" 'BEGIN { printf "peak / loaded:   %.2fx (%.1f MiB / %.1f MiB)\n", p / l, p / 1024, l / 1024 }'
