#!/usr/bin/env bash
# Installs what building, testing and demonstrating chat needs on Debian, through apt-get.
# Idempotent and quick when everything is already there.
set -euo pipefail

packages=(
  pkg-config      # finding system libraries
  nasm            # openh264's and libjpeg-turbo's assembly (much faster codecs)
  clang           # bindgen (camera bindings: v4l2)
  libclang-dev
  libx11-6        # the window (minifb loads these at run time)
  libxcursor1
  xvfb            # a window without a screen: tests and headless demos
  x11-utils       # xwininfo, for the window tests
  xdotool         # key presses, for the window tests
  time            # /usr/bin/time: CPU and memory in scripts/bench.sh
  procps          # pgrep, in the terminal-prompt test (which also uses util-linux's script)
  python3-pip     # numpy and OpenCV for the original Python streamer (below)
  libasound2-dev  # cpal's ALSA backend (sound devices)
  libopus-dev     # Opus, linked by the opus crate
  pulseaudio      # null sinks: real, real-time sound devices for tests with no sound card
  pulseaudio-utils  # pactl, paplay, parec
  libasound2-plugins  # ALSA's pulse plugin, which cpal reaches PulseAudio through
  iproute2        # ip and tc: the network namespaces and tbf links of tests/links.rs (run as root)
  python3-matplotlib  # scripts/plot_stats: --stats-json files as charts (for /usr/bin/python3)
  nftables        # the home router's NAT in the reachability tests (tests/reach.rs, as root)
  miniupnpd-nftables  # a real router answering PCP, NAT-PMP and UPnP-IGD in those tests
  miniupnpc       # upnpc, to check the test router by hand
)
# Anything else a caller needs (scripts/bench.sh asks for ffmpeg).
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The original Python streamer (../shared/seed), for raw-mode interop tests and benchmarks.
if ! python3 -c "import numpy, cv2" 2>/dev/null; then
  echo "setup: installing numpy and opencv-python-headless for the Python streamer" >&2
  python3 -m pip install -q numpy opencv-python-headless >&2
fi

if ! command -v cargo >/dev/null; then
  echo "setup: Rust is not installed; install it with rustup (https://rustup.rs) and run this again" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest >&2
fi
