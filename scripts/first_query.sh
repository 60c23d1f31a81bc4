#!/usr/bin/env bash
# Times `cargo run` in a checkout from its start to the first answered GraphQL query, as a
# newcomer meets it (issue 16's figure). Usage: scripts/first_query.sh CHECKOUT [LABEL]
# Run it twice on a fresh clone: the first run includes the build, the second is a restart.
# Loopback only; it stops the server it started.
set -u
dir=$(cd "${1:?usage: scripts/first_query.sh CHECKOUT [LABEL]}" && pwd) || exit 1
label=${2:-run}
log=$(mktemp)
cd "$dir" || exit 1
start=$(date +%s.%N)
cargo run >"$log" 2>&1 &
for _ in $(seq 1 3000); do
  key=$(grep -ao "development admin key: bk_[0-9a-f]*" "$log" | awk '{print $4}')
  addr=$(grep -ao "listening on http://[0-9.:]*" "$log" | awk '{print $3}')
  if [ -n "$key" ] && [ -n "$addr" ]; then
    out=$(curl -s -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
      -d '{"query":"{ orders(perPage: 1) { pageInfo { totalCount } } }"}' "$addr/graphql")
    if echo "$out" | grep -q totalCount; then
      end=$(date +%s.%N)
      echo "$label: first answered GraphQL query after $(echo "$end - $start" | bc) s: $out"
      break
    fi
  fi
  sleep 0.2
done
pkill -TERM -f "$dir/target/debug/billing-api"
sleep 3
rm -f "$log"
