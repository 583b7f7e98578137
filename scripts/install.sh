#!/usr/bin/env bash
# Build and install ctwatch as a systemd service:
#   /usr/local/bin/ctwatch, /etc/ctwatch/config.toml (commented defaults), /etc/ctwatch/watchlists/,
#   /etc/systemd/system/ctwatch.service (hardened; state in /var/lib/ctwatch).
# Existing config and watchlists are never overwritten. Run as root. DESTDIR=/some/dir installs into a staging
# tree instead (no systemctl calls), e.g. for packaging or to look before installing.
set -euo pipefail
cd "$(dirname "$0")/.."
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}

command -v cargo >/dev/null || { echo "install.sh: cargo not found (install Rust first: https://rustup.rs)" >&2; exit 1; }
echo "building ctwatch (release)..."
cargo build --release --locked --quiet

install -D -m 0755 target/release/ctwatch "$DESTDIR$PREFIX/bin/ctwatch"
install -d -m 0755 "$DESTDIR/etc/ctwatch/watchlists"
if [ ! -e "$DESTDIR/etc/ctwatch/config.toml" ]; then
  target/release/ctwatch config example \
    | sed 's#^watchlist = "watchlists"#watchlist = "/etc/ctwatch/watchlists"#' \
    > "$DESTDIR/etc/ctwatch/config.toml"
  chmod 0644 "$DESTDIR/etc/ctwatch/config.toml"
  echo "wrote /etc/ctwatch/config.toml"
fi
if [ -z "$(ls -A "$DESTDIR/etc/ctwatch/watchlists" 2>/dev/null)" ]; then
  install -m 0644 watchlists/example.txt "$DESTDIR/etc/ctwatch/watchlists/example.txt"
  echo "wrote /etc/ctwatch/watchlists/example.txt: put your domains there"
fi
if [ ! -e "$DESTDIR/etc/ctwatch/env" ]; then
  install -m 0600 /dev/null "$DESTDIR/etc/ctwatch/env"
fi
sed "s#/usr/local/bin/ctwatch#$PREFIX/bin/ctwatch#" scripts/ctwatch.service \
  | install -D -m 0644 /dev/stdin "$DESTDIR/etc/systemd/system/ctwatch.service"

"$DESTDIR$PREFIX/bin/ctwatch" watchlist check "$DESTDIR/etc/ctwatch/watchlists" >/dev/null \
  || echo "warning: the watchlists in /etc/ctwatch/watchlists have errors (ctwatch watchlist check)" >&2
"$DESTDIR$PREFIX/bin/ctwatch" config check "$DESTDIR/etc/ctwatch/config.toml" >/dev/null

if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  echo "installed. Next: edit /etc/ctwatch/watchlists/*.txt, then: systemctl enable --now ctwatch"
  echo "logs: journalctl -u ctwatch -f    status: ctwatch logs --db /var/lib/ctwatch/ctwatch.db"
else
  echo "installed into ${DESTDIR:-/} (systemd not running here: start it with 'systemctl enable --now ctwatch' on the target)"
fi
