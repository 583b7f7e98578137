#!/usr/bin/env bash
# `ctwatch search` on PostgreSQL with 10 M stored names: synthesizes 5 M certificates with two names each
# ("hostN.zoneZ.example" and "www.hostN.zoneZ.example", 10 000 zones) in a fresh database, then times a subtree
# search (zone42.example: ~1 000 names, 500 certificates) and an exact name, twice each: the query alone
# (EXPLAIN ANALYZE of the reversed-name range scan `ctwatch search` runs) and the whole command (wall time,
# release build, --limit 100, certificate records included).
#
#   scripts/bench-search-postgres.sh [CERTS]        (default 5000000 -> 10 M names)
# The database is created on CTWATCH_BENCH_PG_URL's server (default postgres://postgres@127.0.0.1:5432/postgres)
# and dropped afterwards (it takes ~3 GB while it lives).
set -euo pipefail
cd "$(dirname "$0")/.."
certs="${1:-5000000}"
admin="${CTWATCH_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db="ctwatch_searchbench_$$"
url="${admin%/*}/$db"
cargo build --release --quiet --bin ctwatch --example bench_store
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"; psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null
# The schema (and a first 1000 certificates) the way ctwatch writes them.
target/release/examples/bench_store "$url" 1000 >/dev/null
sql() { psql -X -q -v ON_ERROR_STOP=1 "$url" "$@"; }

start=$(date +%s)
sql <<SQL
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
ALTER TABLE cert_names DROP CONSTRAINT cert_names_pkey;
ALTER TABLE certificates DROP CONSTRAINT certificates_tbs_sha256_key;
INSERT INTO certificates (id, tbs_sha256, cert_sha256, entry_type, subject, issuer, serial, not_before, not_after,
                          dns_names, ip_addresses, pubkey_sha256, first_seen)
SELECT g, sha256(int8send(g)), sha256(int8send(-g)), 'precert', 'CN=host' || g, 'C=US, O=Let''s Encrypt, CN=R11',
       to_hex(g), 1750000000, 1757776000,
       '["host' || g || '.zone' || (g % 10000) || '.example","www.host' || g || '.zone' || (g % 10000) || '.example"]',
       '[]', '\x00'::bytea, 1750000000
FROM generate_series(1001, $certs + 1000) g;
INSERT INTO cert_names (rname, cert_id)
SELECT 'example.zone' || (g % 10000) || '.host' || g || s.suffix, g
FROM generate_series(1001, $certs + 1000) g, (VALUES (''), ('.www')) s(suffix);
ALTER TABLE certificates ADD CONSTRAINT certificates_tbs_sha256_key UNIQUE (tbs_sha256);
ALTER TABLE cert_names ADD PRIMARY KEY (rname, cert_id);
ANALYZE;
SQL
names=$(sql -At -c "SELECT COUNT(*) FROM cert_names")
echo "synthesized: $names names, $(sql -At -c 'SELECT COUNT(*) FROM certificates') certificates in $(( $(date +%s) - start )) s"

explain() { # reversed name -> the execution time of the query `ctwatch search` runs
    local r="$1"
    sql -At -c "EXPLAIN (ANALYZE, FORMAT TEXT) SELECT DISTINCT cert_id FROM cert_names
                WHERE rname = '$r' OR (rname >= '$r.' AND rname < '$r/') ORDER BY cert_id DESC LIMIT 100" |
        grep -E 'Execution Time|Index|Bitmap' | sed 's/^/    /'
}
run() { # name -> wall time of the whole command (process start to exit, output to a file)
    local t0 t1 out="$tmp/search.json"
    t0=$(date +%s%N)
    target/release/ctwatch search "$1" --json --limit 100 --db "$url" >"$out"
    t1=$(date +%s%N)
    printf '    ctwatch search %s: %s certificates, wall %d ms\n' "$1" "$(grep -c '"tbs_sha256"' "$out")" \
        $(( (t1 - t0) / 1000000 ))
}
for pass in 1 2; do
    echo "pass $pass"
    echo "  subtree zone42.example"
    explain example.zone42
    run zone42.example
    echo "  exact host4242.zone4242.example"
    explain example.zone4242.host4242
    run host4242.zone4242.example
done
