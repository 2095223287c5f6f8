#!/usr/bin/env bash
# A home router in network namespaces, the bed tests/common/nat.rs builds for the tests:
# "home" (192.168.77.20, on the LAN), "router" (LAN 192.168.77.1, WAN 11.77.0.1; the
# masquerade and firewall of scripts/nat/router.nft, and miniupnpd from
# scripts/nat/miniupnpd.conf answering PCP, NAT-PMP and UPnP-IGD) and "outside" (11.77.0.2,
# on the WAN, with a STUN responder: miniupnpd takes its WAN address as public only once
# STUN says so). The addresses exist only inside the namespaces. Needs root, iproute2,
# nftables, miniupnpd, setpriv and python3.
#
# Sourced, by scripts running with set -euo pipefail (scripts/demo.sh):
#   nat_bed_check  prints why this machine cannot build the bed and fails, or succeeds
#   nat_bed_up     builds it and returns once miniupnpd answers (within 5 s, or fails with
#                  its log); sets NAT_HOME, NAT_ROUTER and NAT_OUTSIDE (namespace names,
#                  for ip netns exec). Call it plainly (not in an if). The addresses are
#                  NAT_HOME_ADDRESS, NAT_GATEWAY_ADDRESS, NAT_WAN_ADDRESS, NAT_OUTSIDE_ADDRESS
#   nat_bed_log    prints miniupnpd's output so far, for failure messages
#   nat_bed_down   removes whatever nat_bed_up made: call it from an EXIT trap, with INT
#                  and TERM traps that exit, so that Ctrl-C and errors remove it too
# As a command: scripts/nat_bed.sh COMMAND [ARGS...] builds the bed, runs COMMAND with
# those variables exported (bash, say, then `ip netns exec "$NAT_HOME" chat --listen`),
# and removes the bed when it ends.
#   NAT_BED_UPNP (yes)    whether miniupnpd offers UPnP-IGD
#   NAT_BED_NATPMP (yes)  whether it offers NAT-PMP and PCP
# Names are chat-nat-PID-...: the namespaces, and the temp dir holding miniupnpd's config,
# leases and log and the STUN responder's log. A bed whose script was killed outright
# (SIGKILL) loses its processes with it (PR_SET_PDEATHSIG), and the next bed, or the next
# NAT test, deletes its namespaces and temp dir.
set -euo pipefail

nat_files=$(cd "$(dirname "${BASH_SOURCE[0]}")/nat" && pwd)
NAT_HOME_ADDRESS=192.168.77.20
NAT_GATEWAY_ADDRESS=192.168.77.1
NAT_WAN_ADDRESS=11.77.0.1
NAT_OUTSIDE_ADDRESS=11.77.0.2
nat_stun_port=3478
nat_startup_seconds=5
NAT_HOME="" NAT_ROUTER="" NAT_OUTSIDE=""
nat_namespaces=() nat_pids=() nat_tmp=""

# Answers RFC 5389 Binding requests with the sender's address (XOR-MAPPED-ADDRESS), as
# nat.rs's responder does; ignores everything else. Arguments: address, port.
nat_stun_program='
import socket, struct, sys
COOKIE = 0x2112A442
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind((sys.argv[1], int(sys.argv[2])))
print("stun: listening on %s:%s" % (sys.argv[1], sys.argv[2]), flush=True)
while True:
    try:
        request, (host, port) = server.recvfrom(1500)
    except OSError:  # ICMP errors from earlier answers, and the like: keep serving
        continue
    if len(request) < 20:
        continue
    kind, length, cookie = struct.unpack("!HHI", request[:8])
    if kind != 0x0001 or cookie != COOKIE or length % 4 or 20 + length != len(request):
        continue
    address = struct.unpack("!I", socket.inet_aton(host))[0] ^ COOKIE
    answer = struct.pack("!HH", 0x0101, 12) + request[4:20]  # success; cookie, transaction
    answer += struct.pack("!HHHHI", 0x0020, 8, 0x0001, port ^ (COOKIE >> 16), address)
    server.sendto(answer, (host, port))
'

# Succeeds if the gateway answers a NAT-PMP public address request with the WAN address
# within 0.2 s (so miniupnpd has done its STUN and maps ports). Arguments: gateway, WAN.
nat_natpmp_probe='
import socket, sys
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.settimeout(0.2)
probe.connect((sys.argv[1], 5351))
probe.send(b"\0\0")
try:
    answer = probe.recv(16)
except OSError:
    sys.exit(1)
wan = socket.inet_aton(sys.argv[2])
ok = len(answer) >= 12 and answer[1] == 128 and answer[2:4] == b"\0\0" and answer[8:12] == wan
sys.exit(0 if ok else 1)
'

nat_bed_check() {
  local tool missing=()
  for tool in ip nft miniupnpd setpriv python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ "$(id -u)" -ne 0 ]; then
    echo "not root"
    return 1
  elif [ ${#missing[@]} -gt 0 ]; then
    local list
    list=$(printf ', %s' "${missing[@]}")
    echo "no ${list#, }"
    return 1
  fi
}

# Deletes the namespaces and temp dirs of beds (these and nat.rs's) whose process is gone.
nat_bed_remove_stale() {
  local path name pid
  for path in /run/netns/chat-nat-* "${TMPDIR:-/tmp}"/chat-nat-*; do
    [ -e "$path" ] || continue
    name=${path##*/}
    pid=${name#chat-nat-}
    pid=${pid%%-*}
    if ! [[ $pid =~ ^[0-9]+$ ]] || [ -e "/proc/$pid" ]; then continue; fi
    if [[ $path == /run/netns/* ]]; then
      ip netns del "$name" 2>/dev/null || true
    else
      rm -rf "$path"
    fi
  done
}

nat_bed_up() {
  nat_bed_remove_stale
  local prefix=chat-nat-$$ namespace
  nat_tmp=$(mktemp -d "${TMPDIR:-/tmp}/$prefix-XXXXXX")
  NAT_HOME=$prefix-home NAT_ROUTER=$prefix-router NAT_OUTSIDE=$prefix-outside
  for namespace in "$NAT_HOME" "$NAT_ROUTER" "$NAT_OUTSIDE"; do
    ip netns add "$namespace"
    nat_namespaces+=("$namespace")
    ip -n "$namespace" link set lo up
  done
  # Interface names are per namespace, so they are the same in every bed (and in nat.rs).
  ip -n "$NAT_HOME" link add eth0 type veth peer name lan netns "$NAT_ROUTER"
  ip -n "$NAT_ROUTER" link add wan type veth peer name eth0 netns "$NAT_OUTSIDE"
  local namespace_device_address device address
  for namespace_device_address in "$NAT_HOME eth0 $NAT_HOME_ADDRESS" \
    "$NAT_ROUTER lan $NAT_GATEWAY_ADDRESS" "$NAT_ROUTER wan $NAT_WAN_ADDRESS" \
    "$NAT_OUTSIDE eth0 $NAT_OUTSIDE_ADDRESS"; do
    read -r namespace device address <<<"$namespace_device_address"
    ip -n "$namespace" addr add "$address/24" dev "$device"
    ip -n "$namespace" link set "$device" up
  done
  ip -n "$NAT_HOME" route add default via "$NAT_GATEWAY_ADDRESS"
  ip netns exec "$NAT_ROUTER" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
  ip netns exec "$NAT_ROUTER" nft -f "$nat_files/router.nft"

  # Both daemons die with this shell (setpriv --pdeathsig), and nat_bed_down kills them.
  # The STUN responder, started in the background, ignores Ctrl-C (SIGINT).
  ip netns exec "$NAT_OUTSIDE" setpriv --pdeathsig KILL python3 -c "$nat_stun_program" \
    "$NAT_OUTSIDE_ADDRESS" "$nat_stun_port" </dev/null >"$nat_tmp/stun.log" 2>&1 &
  nat_pids+=("$!")
  local deadline=$((SECONDS + nat_startup_seconds))
  until grep -q "^stun: listening" "$nat_tmp/stun.log"; do
    if ! kill -0 "${nat_pids[-1]}" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "nat_bed: the STUN responder did not start; its output:" >&2
      cat "$nat_tmp/stun.log" >&2
      return 1
    fi
    sleep 0.02
  done

  local upnp=${NAT_BED_UPNP:-yes} natpmp=${NAT_BED_NATPMP:-yes} config
  config=$(<"$nat_files/miniupnpd.conf")
  config=${config//@ENABLE_UPNP@/$upnp}
  config=${config//@ENABLE_NATPMP@/$natpmp}
  config=${config//@LEASE_FILE@/$nat_tmp/miniupnpd.leases}
  printf '%s\n' "$config" >"$nat_tmp/miniupnpd.conf"
  # In a session of its own, so that Ctrl-C reaches the peers but not the router (which
  # would quit before a listener could remove its mapping); setsid does not fork here.
  ip netns exec "$NAT_ROUTER" setsid setpriv --pdeathsig KILL \
    miniupnpd -d -f "$nat_tmp/miniupnpd.conf" -P "$nat_tmp/miniupnpd.pid" \
    </dev/null >"$nat_tmp/miniupnpd.log" 2>&1 &
  nat_pids+=("$!")
  local miniupnpd_pid=$! natpmp_ready=no upnp_ready=no
  deadline=$((SECONDS + nat_startup_seconds))
  while :; do
    if ! kill -0 "$miniupnpd_pid" 2>/dev/null; then
      echo "nat_bed: miniupnpd exited while starting; its log:" >&2
      cat "$nat_tmp/miniupnpd.log" >&2
      return 1
    fi
    if [ "$upnp_ready" = no ] && { [ "$upnp" = no ] || nat_upnp_listening; }; then
      upnp_ready=yes
    fi
    if [ "$natpmp_ready" = no ] && { [ "$natpmp" = no ] || nat_natpmp_answers; }; then
      natpmp_ready=yes
    fi
    if [ "$upnp_ready$natpmp_ready" = yesyes ]; then return 0; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "nat_bed: miniupnpd not ready after $nat_startup_seconds s (UPnP listening:" \
        "$upnp_ready, NAT-PMP answering with $NAT_WAN_ADDRESS: $natpmp_ready); its log:" >&2
      cat "$nat_tmp/miniupnpd.log" >&2
      return 1
    fi
    sleep 0.05
  done
}

# Whether miniupnpd's UPnP HTTP port listens and its SSDP socket (the last one it opens for
# UPnP) is bound, in the router.
nat_upnp_listening() {
  local sockets
  sockets=$(ip netns exec "$NAT_ROUTER" ss -Hlntu) || return 1
  grep -q '^tcp .*:5000 ' <<<"$sockets" && grep -q '^udp .*:1900 ' <<<"$sockets"
}

# Whether the gateway answers NAT-PMP, from the home host.
nat_natpmp_answers() {
  ip netns exec "$NAT_HOME" python3 -c "$nat_natpmp_probe" "$NAT_GATEWAY_ADDRESS" "$NAT_WAN_ADDRESS"
}

nat_bed_log() {
  [ -z "$nat_tmp" ] || cat "$nat_tmp/miniupnpd.log" 2>/dev/null || true
}

nat_bed_down() {
  local pid namespace
  for pid in "${nat_pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # Deleting a namespace removes its end of each veth pair, and so the pair.
  for namespace in "${nat_namespaces[@]}"; do
    ip netns del "$namespace" 2>/dev/null || true
  done
  [ -z "$nat_tmp" ] || rm -rf "$nat_tmp"
  nat_pids=() nat_namespaces=() nat_tmp=""
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]  (builds the bed, runs COMMAND, removes the bed)" >&2
    exit 2
  fi
  if ! reason=$(nat_bed_check); then
    echo "nat_bed: cannot build the bed ($reason): it needs root, iproute2, nftables, miniupnpd," \
      "setpriv and python3 (scripts/setup.sh installs them)" >&2
    exit 1
  fi
  trap nat_bed_down EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  nat_bed_up
  export NAT_HOME NAT_ROUTER NAT_OUTSIDE NAT_WAN_ADDRESS NAT_HOME_ADDRESS NAT_GATEWAY_ADDRESS \
    NAT_OUTSIDE_ADDRESS
  echo "nat_bed: up: $NAT_HOME ($NAT_HOME_ADDRESS), $NAT_ROUTER (WAN $NAT_WAN_ADDRESS)," \
    "$NAT_OUTSIDE ($NAT_OUTSIDE_ADDRESS)" >&2
  "$@"
fi
