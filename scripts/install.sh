#!/usr/bin/env bash
# Build and install ctwatch as a systemd service:
#   /usr/local/bin/ctwatch (stripped), /etc/ctwatch/config.toml (commented defaults, with db and env_file set),
#   /etc/ctwatch/watchlists/ (empty: put your *.txt there; example.txt.sample shows the syntax),
#   /etc/ctwatch/env (secrets, mode 0600), /etc/systemd/system/ctwatch.service (hardened; state in /var/lib/ctwatch).
# Existing config, env and watchlists are never overwritten. Run as root. DESTDIR=/some/dir installs into a
# staging tree instead (no systemctl calls), e.g. for packaging or to look before installing.
# CARGO_TARGET_DIR is honoured; CTWATCH_BIN=/path/to/ctwatch installs that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}

if [ -n "${CTWATCH_BIN:-}" ]; then
  bin=$CTWATCH_BIN
else
  command -v cargo >/dev/null || { echo "install.sh: cargo not found (install Rust first: https://rustup.rs)" >&2; exit 1; }
  echo "building ctwatch (release)..."
  cargo build --release --locked --quiet
  bin=${CARGO_TARGET_DIR:-target}/release/ctwatch
fi
[ -x "$bin" ] || { echo "install.sh: $bin is not an executable" >&2; exit 1; }

staged() { echo "$DESTDIR$1"; }

install -D -m 0755 "$bin" "$(staged "$PREFIX/bin/ctwatch")"
if command -v strip >/dev/null; then
  strip "$(staged "$PREFIX/bin/ctwatch")"
else
  echo "install.sh: 'strip' not found (binutils): the installed binary keeps its symbols" >&2
fi
echo "installed $(staged "$PREFIX/bin/ctwatch")"
ctwatch=$(staged "$PREFIX/bin/ctwatch")

install -d -m 0755 "$(staged /etc/ctwatch/watchlists)"
if [ ! -e "$(staged /etc/ctwatch/config.toml)" ]; then
  # Relative paths are relative to the config file: /etc/ctwatch/watchlists and /etc/ctwatch/env.
  "$ctwatch" config example \
    | sed -e 's|^# db = "/var/lib/ctwatch/ctwatch.db"|db = "/var/lib/ctwatch/ctwatch.db"|' \
          -e 's|^# env_file = "/etc/ctwatch/env"|env_file = "env"|' \
    > "$(staged /etc/ctwatch/config.toml)"
  chmod 0644 "$(staged /etc/ctwatch/config.toml)"
  echo "wrote $(staged /etc/ctwatch/config.toml)"
fi
if [ ! -e "$(staged /etc/ctwatch/watchlists/example.txt.sample)" ]; then
  # A sample, not an active watchlist (only *.txt files are read): its items would report strangers'
  # certificates and have the daemon probe their hosts.
  install -m 0644 watchlists/example.txt "$(staged /etc/ctwatch/watchlists/example.txt.sample)"
  echo "wrote $(staged /etc/ctwatch/watchlists/example.txt.sample) (the syntax; not read)"
fi
if [ ! -e "$(staged /etc/ctwatch/env)" ]; then
  install -m 0600 /dev/null "$(staged /etc/ctwatch/env)"
  echo "wrote $(staged /etc/ctwatch/env) (empty; KEY=value lines for the *_env keys of the config)"
fi
sed "s#/usr/local/bin/ctwatch#$PREFIX/bin/ctwatch#" scripts/ctwatch.service \
  | install -D -m 0644 /dev/stdin "$(staged /etc/systemd/system/ctwatch.service)"
echo "wrote $(staged /etc/systemd/system/ctwatch.service)"

"$ctwatch" config check "$(staged /etc/ctwatch/config.toml)" >/dev/null
if [ -z "$(find "$(staged /etc/ctwatch/watchlists)" -maxdepth 1 -name '*.txt' -print -quit)" ]; then
  echo "no watchlist yet: put one domain per line in /etc/ctwatch/watchlists/mycompany.txt (nothing is reported until then)"
elif ! "$ctwatch" watchlist check "$(staged /etc/ctwatch/watchlists)" >/dev/null; then
  echo "warning: the watchlists in /etc/ctwatch/watchlists have errors (ctwatch watchlist check)" >&2
fi

if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  echo "installed. Next: add /etc/ctwatch/watchlists/*.txt, then: systemctl enable --now ctwatch"
  echo "logs: journalctl -u ctwatch -f    status: ctwatch logs --config /etc/ctwatch/config.toml"
else
  echo "installed into ${DESTDIR:-/} (systemd not running here: start it with 'systemctl enable --now ctwatch' on the target)"
fi
