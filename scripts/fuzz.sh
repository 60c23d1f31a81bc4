#!/usr/bin/env bash
# Fuzzes a running billing-api with schemathesis (from PyPI, installed into a virtualenv):
# the REST layer from its OpenAPI document, and the GraphQL endpoint from its schema.
# Fails on any 5xx, on responses that break the OpenAPI document (schema, status code,
# content type), and on GraphQL errors that are INTERNAL or carry no public code.
#
# Usage: scripts/fuzz.sh BASE_URL ADMIN_KEY [MAX_EXAMPLES]
#   e.g. scripts/fuzz.sh http://127.0.0.1:8080 "$(cat .data/dev-admin-key)" 50
# The test suite runs it in a short bounded mode (tests/api/fuzz.rs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base="${1:?base URL}"
key="${2:?admin API key}"
examples="${3:-25}"
venv="${FUZZ_VENV:-$here/../target/fuzz-venv}"
version="4.32.5"

if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
st="$venv/bin/schemathesis"
# schemathesis keeps a cache in the working directory: keep it out of the source tree.
work="${venv}-work"
mkdir -p "$work"
cd "$work"
common=(-H "Authorization: Bearer $key" -n "$examples" --seed 20261122 --request-timeout 20 --no-color)

echo "== REST (OpenAPI)"
SCHEMATHESIS_HOOKS=fuzz_checks PYTHONPATH="$here" "$st" run "$base/api/v1/openapi.json" "${common[@]}" \
  -c not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,no_internal_errors

echo "== GraphQL"
SCHEMATHESIS_HOOKS=fuzz_checks PYTHONPATH="$here" "$st" run "$base/graphql" "${common[@]}" \
  --exclude-checks not_a_server_error -c no_internal_errors
