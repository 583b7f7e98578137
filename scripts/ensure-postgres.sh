#!/usr/bin/env bash
# Make sure the PostgreSQL the tests use answers: CTWATCH_TEST_PG_URL when set (it must answer), else
# postgres://postgres@127.0.0.1:5432/postgres — installed (Debian's postgresql), given trust auth on 127.0.0.1
# and started when it is missing. Idempotent and quick when it is there. Called by .ci/run.
set -euo pipefail
url="${CTWATCH_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
answers() { command -v psql >/dev/null && psql -X -q "$url" -c 'SELECT 1' >/dev/null 2>&1; }
answers && exit 0
if [ -n "${CTWATCH_TEST_PG_URL:-}" ]; then
    echo "ensure-postgres: CTWATCH_TEST_PG_URL=$url does not answer" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
if ! command -v pg_ctlcluster >/dev/null; then
    echo "ensure-postgres: installing postgresql (apt-get)" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
ver="$(ls /etc/postgresql | sort -n | tail -1)"
hba="/etc/postgresql/$ver/main/pg_hba.conf"
if ! $SUDO grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    echo "ensure-postgres: trust auth for 127.0.0.1 in $hba (test machines only)" >&2
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
fi
$SUDO pg_ctlcluster "$ver" main start 2>/dev/null || $SUDO pg_ctlcluster "$ver" main reload
for _ in $(seq 60); do
    answers && exit 0
    sleep 0.5
done
echo "ensure-postgres: PostgreSQL $ver started but $url does not answer" >&2
exit 1
