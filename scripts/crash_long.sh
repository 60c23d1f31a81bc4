#!/usr/bin/env bash
# The long mode of the crash test: kills the real server with SIGKILL many times while
# refunds run against a fake provider, then checks audit, acknowledged writes and the
# provider's refunds against the database (tests/api/crashes.rs).
#   scripts/crash_long.sh [ROUNDS]      (default 5 rounds of 25 kills and 300 refunds)
# Every round prints its CRASH_SEED; a failing round replays with CRASH_SEED=<seed>.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
for round in $(seq 1 "$rounds"); do
    echo "round $round/$rounds"
    CRASH_KILLS="${CRASH_KILLS:-25}" CRASH_REFUNDS="${CRASH_REFUNDS:-300}" \
        cargo test --quiet --test api crashes:: -- --nocapture 2>&1 | grep -E 'CRASH_SEED|survived|panicked|test result'
done
