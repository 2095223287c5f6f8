#!/usr/bin/env bash
# The README's first command: builds chat, then calls from one peer to another on this
# machine for a few seconds: windows if there is a display, headless otherwise. Prints
# both peers' summaries. Then, as root, a second call across a home router's NAT
# (scripts/nat_bed.sh: network namespaces, nftables and miniupnpd): a listener at home
# maps its port on the router, a caller outside calls the router's public address, and the
# listener removes the mapping as it exits. Without root or those tools it says so in one
# line and skips that call.
#   DEMO_SECONDS (8)  how long each call lasts
#   DEMO_PORT (1254)  the listener's UDP port on 127.0.0.1
#   DEMO_NAT (1)      0 skips the call across the NAT
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/nat_bed.sh
scripts/setup.sh
cargo build --release --locked
bin=target/release/chat
seconds=${DEMO_SECONDS:-8}
port=${DEMO_PORT:-1254}
tmp=$(mktemp -d)
listener_pid=""
cleanup() {
  if [ -n "$listener_pid" ]; then
    kill "$listener_pid" 2>/dev/null || true
    wait "$listener_pid" 2>/dev/null || true
  fi
  nat_bed_down
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

# The same call across a home router's NAT, headless: the listener in "home" maps its
# port on the router by itself (its default), the caller in "outside" calls the router's
# public address, and each line says which side printed it. The listener dies with this
# script even if it is killed outright (it would otherwise wait in a deleted namespace).
[ "${DEMO_NAT:-1}" != 0 ] || exit 0
if ! reason=$(nat_bed_check); then
  echo "demo: skipping the call across a NAT ($reason): it needs root and nftables/miniupnpd" \
    "(scripts/setup.sh installs them)" >&2
  exit 0
fi
nat_failed() {
  echo "demo: $1; the caller, the listener and the router (the end of miniupnpd's log) said:" >&2
  cat "$tmp"/nat-* >&2
  nat_bed_log | tail -n 20 >&2
  exit 1
}
echo "== across a home router's NAT: the listener at home ($NAT_HOME_ADDRESS), the caller" \
  "outside ($NAT_OUTSIDE_ADDRESS) calling the router's public address ($NAT_WAN_ADDRESS)"
nat_bed_up
ip netns exec "$NAT_HOME" setpriv --pdeathsig KILL \
  "$bin" --listen --once --headless --source test --audio-source tone:440 --audio-sink none \
  --quiet --peer "$caller_fp" \
  --certs certs/demo-listener >"$tmp/nat-listener.out" 2>"$tmp/nat-listener.err" &
listener_pid=$!
for _ in $(seq 100); do
  grep -q "^reachable from the internet" "$tmp/nat-listener.out" && break
  kill -0 "$listener_pid" 2>/dev/null || break
  sleep 0.05
done
grep -q "^reachable from the internet" "$tmp/nat-listener.out" ||
  nat_failed "the listener at home did not get its port mapped"
sed 's/^/listener: /' "$tmp/nat-listener.out"
ip netns exec "$NAT_OUTSIDE" \
  "$bin" --call "$NAT_WAN_ADDRESS" --headless --source test --audio-source tone:660 --audio-sink none \
  --quiet --duration "$seconds" --peer "$listener_fp" \
  --certs certs/demo-caller >"$tmp/nat-caller.out" 2>"$tmp/nat-caller.err" ||
  nat_failed "the call across the NAT failed"
wait "$listener_pid"
listener_pid=""
grep "^call with" "$tmp/nat-caller.out" | sed 's/^/caller:   /'
{ grep "port mapping" "$tmp/nat-listener.out" || true; } | sed 's/^/listener: /'
