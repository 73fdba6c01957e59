#!/usr/bin/env bash
# Fuzz the REST API against its own OpenAPI document with schemathesis (an outside tool).
#
#   bash deploy/fuzz/schemathesis.sh            # builds banli, starts it on a scratch data dir, fuzzes
#
# Every check runs. What it may report, and why it is by design:
# - ST202 "schema-valid request rejected" for rules the schema cannot express: the same
#   Idempotency-Key sent with a different body (422 by contract), closes_on before opens_on, dates
#   outside the calendar data, a key revoking itself, page tokens the API did not issue, integers
#   written as floats (11387.0).
# Anything else — a 5xx, a response that breaks the document, an undocumented status or
# content type — is a defect.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v schemathesis >/dev/null || pip install --quiet schemathesis
cargo build --release -p banli
dir=$(mktemp -d)
port=${PORT:-18181}
target/release/banli serve --data-dir "$dir/data" --http-addr "127.0.0.1:$port" --grpc-addr "127.0.0.1:$((port + 1))" >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do [ -f "$dir/data/assigning-office.key" ] && break; sleep 0.1; done
key=$(cat "$dir/data/assigning-office.key")
schemathesis run "http://127.0.0.1:$port/openapi.json" -H "Authorization: Bearer $key" --checks all -n "${EXAMPLES:-60}" --workers 2 || true
if grep -qi panicked "$dir/serve.log"; then echo "the server panicked"; exit 1; fi
