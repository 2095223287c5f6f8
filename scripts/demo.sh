#!/usr/bin/env bash
# The README's first command: builds chat, then calls from one peer to another on this
# machine for a few seconds: windows if there is a display, headless otherwise. Prints
# both peers' summaries.
#   DEMO_SECONDS (8)  how long the call lasts
#   DEMO_PORT (1254)  the listener's UDP port on 127.0.0.1
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked
bin=target/release/chat
seconds=${DEMO_SECONDS:-8}
port=${DEMO_PORT:-1254}
tmp=$(mktemp -d)
listener_pid=""
cleanup() { [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

window=--headless
if [ -n "${DISPLAY:-}" ]; then window=""; else echo "demo: no display, running headless" >&2; fi

# Each side pins the other's identity, the way two people who swapped fingerprints would.
listener_fp=$($bin --fingerprint --certs certs/demo-listener)
caller_fp=$($bin --fingerprint --certs certs/demo-caller)

# The listener shows this machine's camera if it has one, else the test pattern; the
# caller sends the test pattern, so each side shows something different. Each sends a tone
# of its own and plays the other's to nowhere: two peers on one machine would otherwise
# hear themselves through the speaker, and the demo must work with no sound card.
$bin --listen "127.0.0.1:$port" --once $window --source auto --audio-source tone:440 --audio-sink none \
  --quiet --peer "$caller_fp" \
  --certs certs/demo-listener >"$tmp/listener.out" 2>"$tmp/listener.err" &
listener_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/listener.out" 2>/dev/null && break; sleep 0.05; done
if ! grep -q "listening on" "$tmp/listener.out"; then
  cat "$tmp/listener.err" >&2
  exit 1
fi
echo "== caller (status once a second)"
$bin --call "127.0.0.1:$port" $window --source test --audio-source tone:660 --audio-sink none \
  --duration "$seconds" --peer "$listener_fp" \
  --certs certs/demo-caller | grep -v "^calling"
wait "$listener_pid"
listener_pid=""
echo "== listener"
grep -v "^listening" "$tmp/listener.out"
