#!/usr/bin/env bash
# Benchmarks a chat call on loopback beside the original Python streamer, and its sound
# beside an ffmpeg Opus round trip, measured in the same run on the same machine; then a
# 720p call through each impaired link of tests/network_bench.rs, adapting and with
# --no-adapt, charted with scripts/plot_stats; the camera path (an MJPEG file, with the
# window under Xvfb) beside the test pattern; then per-picture costs (criterion); and
# prints the tables. Medians of one run each: the
# machine is shared and noisy, so compare ratios, not single digits.
#   BENCH_SECONDS (10)   length of each loopback call
#   BENCH_SIZES ("640x480 1280x720")
#   BENCH_CAMERA_SIZES ("1280x720 1920x1080")   sizes of the camera-path calls (MJPEG file, window)
#   BENCH_LOOPBACK, BENCH_CAMERA, BENCH_NET, BENCH_CRITERION (1)   0 skips that section
#   BENCH_NET_SCENARIOS ("drop tbf_1mbit outage loss2")   the network scenarios to run
#   BENCH_PLOTS (target/bench-plots)   where the network charts and their stats files go
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh ffmpeg
cargo build --release --locked 2>&1 | grep -v "^\s*\(Compiling\|Finished\)" >&2 || true
bin=$PWD/target/release/chat
seconds=${BENCH_SECONDS:-10}
sizes=${BENCH_SIZES:-640x480 1280x720}
[ "${BENCH_LOOPBACK:-1}" != 0 ] || sizes=""
seed=$(cd .. && pwd)/shared/seed/run.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
timed() { /usr/bin/time -f "%U %S %e %M" -o "$1" "${@:2}"; }

# The seed's run.sh gives its server 5 s to listen; a cold `import cv2` can take longer.
[ -x "$seed" ] && { python3 -c "import numpy, cv2" 2>/dev/null || python3 -m pip install -q numpy opencv-python-headless >&2; }
# The seed server binds without SO_REUSEADDR, so it fails on a port still in TIME_WAIT from
# an earlier run: let the kernel pick a port that is free in every sense.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# One call on loopback with "$@" on both sides, its files in $1 named by $2 (NAMEa.json for
# the listener, NAMEb.json for the caller, .time for CPU and memory).
call() {
  local dir=$1 name=$2 a port
  shift 2
  timed "$dir/${name}a.time" "$bin" --listen 127.0.0.1:0 --once "$@" --certs "$dir/certs-a" \
    --stats-json "$dir/${name}a.json" >"$dir/${name}a.out" 2>"$dir/${name}a.err" &
  a=$!
  for _ in $(seq 200); do grep -q "listening on" "$dir/${name}a.out" 2>/dev/null && break; sleep 0.05; done
  port=$(grep -o '127.0.0.1:[0-9]*' "$dir/${name}a.out" | head -1 | cut -d: -f2)
  timed "$dir/${name}b.time" "$bin" --call "127.0.0.1:$port" --duration "$seconds" "$@" --certs "$dir/certs-b" \
    --stats-json "$dir/${name}b.json" >"$dir/${name}b.out" 2>"$dir/${name}b.err"
  wait "$a"
}
for size in $sizes; do
  dir=$tmp/$size
  mkdir -p "$dir"
  common=(--headless --source test --size "$size" --fps 30 --quiet --accept-new)
  # The QUIC call carries sound too (a tone each way, played to nowhere in real time).
  call "$dir" "" "${common[@]}" --audio-source tone --audio-sink none
  # The same call without sound: nothing to hold the pictures for, so this is the video
  # path's own latency.
  call "$dir" v "${common[@]}" --audio-source none
  # Raw mode, chat to chat, both ways at 30 fps.
  call "$dir" r "${common[@]}" --raw
  if [ -x "$seed" ]; then
    # Raw mode receiving as fast as the original server sends (unpaced), beside the
    # original client doing the same.
    port=$(free_port)
    "$seed" server --port "$port" --size "$size" --fps 0 --frames $((seconds * 60)) >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 200); do ss -ltn | grep -q "127.0.0.1:$port " && break; sleep 0.05; done
    timed "$dir/ru.time" "$bin" --call "127.0.0.1:$port" --raw "${common[@]}" \
      --stats-json "$dir/ru.json" >"$dir/ru.out" 2>"$dir/ru.err" || cat "$dir/ru.err" >&2
    wait "$server" || true
    timed "$dir/seedu.time" "$seed" pair --size "$size" --fps 0 --frames $((seconds * 30)) --port "$(free_port)" \
      >"$dir/seedu.out" 2>"$dir/seedu.err" || { echo "bench: the unpaced Python pair failed at $size:" >&2; cat "$dir/seedu.err" >&2; }
    timed "$dir/seed.time" "$seed" pair --size "$size" --fps 30 --frames $((seconds * 30)) --port "$(free_port)" --log "$dir/seed.log" \
      >"$dir/seed.out" 2>"$dir/seed.err" || { echo "bench: the Python streamer failed at $size:" >&2; cat "$dir/seed.err" "$dir/seed.out" >&2; }
  fi
done

# A camera's path: both peers send an MJPEG file (ffmpeg's testsrc2 as a webcam encodes it,
# 4:2:2) through the code a camera's buffers take, with the window open under Xvfb; beside
# the test pattern with the window, video only, at each of BENCH_CAMERA_SIZES.
camera_sizes=${BENCH_CAMERA_SIZES:-1280x720 1920x1080}
[ "${BENCH_CAMERA:-1}" != 0 ] || camera_sizes=""
if [ -n "$camera_sizes" ]; then
  # Xvfb picks a free display number itself and writes it once it accepts connections.
  Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp 3>"$tmp/xvfb.display" >/dev/null 2>&1 &
  xvfb=$!
  trap 'kill "$xvfb" 2>/dev/null; rm -rf "$tmp"' EXIT
  for _ in $(seq 100); do [ -s "$tmp/xvfb.display" ] && break; sleep 0.1; done
  [ -s "$tmp/xvfb.display" ] || { echo "bench: Xvfb did not start" >&2; exit 1; }
  display=:$(head -n1 "$tmp/xvfb.display")
  for size in $camera_sizes; do
    dir=$tmp/camera-$size
    mkdir -p "$dir"
    echo "bench: camera path at $size" >&2
    ffmpeg -loglevel error -f lavfi -i "testsrc2=size=$size:rate=30" -frames:v 300 -c:v mjpeg -q:v 4 \
      -pix_fmt yuvj422p -f mjpeg "$dir/clip.mjpeg"
    window=(--size "$size" --fps 30 --quiet --accept-new --audio-source none)
    DISPLAY=$display call "$dir" p --source test "${window[@]}"
    DISPLAY=$display call "$dir" m --source "$dir/clip.mjpeg" "${window[@]}"
  done
fi

if [ -n "$sizes" ]; then
  echo "bench: ffmpeg Opus round trip" >&2
  python3 scripts/opus_roundtrip.py "$seconds" >"$tmp/ffmpeg-opus.out" || echo "bench: the ffmpeg Opus round trip failed" >&2
fi

net_scenarios=""
if [ "${BENCH_NET:-1}" != 0 ]; then
  net_scenarios=${BENCH_NET_SCENARIOS:-drop tbf_1mbit outage loss2}
  plots=$(mkdir -p "${BENCH_PLOTS:-target/bench-plots}" && cd "${BENCH_PLOTS:-target/bench-plots}" && pwd)
  echo "bench: network scenarios ($net_scenarios), each call twice (about 4 minutes for all four)" >&2
  # One at a time: two 720p calls at once would share this machine's cores.
  # shellcheck disable=SC2086 # one test name per word
  BENCH_NET_OUT=$tmp/net cargo test --release --locked --test network_bench -- --ignored --exact --test-threads 1 \
    --nocapture $net_scenarios >"$tmp/net.log" 2>&1 ||
    { cat "$tmp/net.log" >&2; echo "bench: a network scenario failed (above)" >&2; }
  cp "$tmp/net.log" "$plots/network_bench.log"
  for scenario in $net_scenarios; do
    dir=$tmp/net/$scenario
    if [ ! -f "$dir/scenario.json" ]; then
      echo "bench: network scenario '$scenario' did not run (tests/network_bench.rs has drop tbf_1mbit outage loss2)" >&2
    elif [ -f "$dir/adaptive/a.json" ] && [ -f "$dir/fixed/b.json" ]; then
      # The stats files too, so that a chart can be drawn again or differently.
      rm -rf "${plots:?}/$scenario" && cp -r "$dir" "$plots/$scenario"
      scripts/plot_stats --capacity "$dir/scenario.json" --title "$scenario: adaptive (left) and --no-adapt (right)" \
        "$dir/adaptive/a.json" --label "adaptive: a (listener)" "$dir/adaptive/b.json" --label "adaptive: b (caller)" \
        "$dir/fixed/a.json" --label "--no-adapt: a (listener)" "$dir/fixed/b.json" --label "--no-adapt: b (caller)" \
        -o "$plots/$scenario.png" || echo "bench: could not chart $scenario" >&2
    else
      echo "bench: network scenario '$scenario': $(grep -m1 "skipped" "$tmp/net.log" || echo "no stats (see the log above)")" >&2
    fi
  done
fi

if [ "${BENCH_CRITERION:-1}" != 0 ]; then
  echo "bench: per-picture costs (criterion)" >&2
  cargo bench --locked --bench frame_path -- --warm-up-time 1 --measurement-time 3 >"$tmp/criterion.log" 2>&1 ||
    { cat "$tmp/criterion.log" >&2; exit 1; }
fi

[ -z "$sizes" ] || python3 - "$tmp" "$seconds" $sizes <<'PY'
import json, os, sys
tmp, seconds, sizes = sys.argv[1], float(sys.argv[2]), sys.argv[3:]

def summary(path):
    with open(path) as f:
        return [json.loads(l) for l in f if '"summary":true' in l][-1]

def cpu(path):
    user, system, wall, rss_kb = open(path).read().split()[-4:]
    return (float(user) + float(system)) / float(wall), int(rss_kb) / 1024

rows = []
for size in sizes:
    d = os.path.join(tmp, size)
    w, h = map(int, size.split("x"))
    a, b = summary(f"{d}/a.json"), summary(f"{d}/b.json")
    (ca, ma), (cb, mb) = cpu(f"{d}/a.time"), cpu(f"{d}/b.time")
    ours = {
        "fps": min(a["fps_received"], b["fps_received"]),
        "p50": max(a["latency_ms_p50"], b["latency_ms_p50"]),
        "p95": max(a["latency_ms_p95"], b["latency_ms_p95"]),
        "mbps": max(a["kbps_received"], b["kbps_received"]) / 1000,
        "psnr": min(a["psnr_db"], b["psnr_db"]),
        "cpu_peer": max(ca, cb), "cpu_pair": ca + cb, "rss": max(ma, mb),
        "first": b["first_frame_ms"],
    }
    rows.append(("chat (QUIC, H.264 + Opus, both ways)", size, ours))
    va, vb = summary(f"{d}/va.json"), summary(f"{d}/vb.json")
    (cva, mva), (cvb, mvb) = cpu(f"{d}/va.time"), cpu(f"{d}/vb.time")
    rows.append(("chat (QUIC, video only)", size, {
        "fps": min(va["fps_received"], vb["fps_received"]),
        "p50": max(va["latency_ms_p50"], vb["latency_ms_p50"]), "p95": max(va["latency_ms_p95"], vb["latency_ms_p95"]),
        "mbps": max(va["kbps_received"], vb["kbps_received"]) / 1000, "psnr": min(va["psnr_db"], vb["psnr_db"]),
        "cpu_peer": max(cva, cvb), "cpu_pair": cva + cvb, "rss": max(mva, mvb), "first": vb["first_frame_ms"],
    }))
    ra, rb = summary(f"{d}/ra.json"), summary(f"{d}/rb.json")
    (cra, mra), (crb, mrb) = cpu(f"{d}/ra.time"), cpu(f"{d}/rb.time")
    rows.append(("chat raw (TCP pickle, both ways)", size, {
        "fps": min(ra["fps_received"], rb["fps_received"]), "p50": None, "p95": None,
        "mbps": max(ra["kbps_received"], rb["kbps_received"]) / 1000, "psnr": min(ra["psnr_db"], rb["psnr_db"]),
        "cpu_peer": max(cra, crb), "cpu_pair": cra + crb, "rss": max(mra, mrb), "first": rb["first_frame_ms"],
    }))
    seed_out = f"{d}/seed.out"
    if os.path.exists(seed_out) and open(seed_out).read().strip():
        fields = dict(kv.split("=") for kv in open(seed_out).read().split())
        cpu_pair, rss = cpu(f"{d}/seed.time")
        fps = float(fields["fps"])
        seed = {
            "fps": fps, "p50": float(fields["latency_ms_p50"]), "p95": float(fields["latency_ms_p95"]),
            "mbps": fps * (w * h * 3 + 160) * 8 / 1e6, "psnr": None,
            "cpu_peer": None, "cpu_pair": cpu_pair, "rss": rss, "first": None,
        }
        rows.append(("python seed (TCP, pickle, one way)", size, seed))
        rows.append(("ratio chat / seed", size, {k: (ours[k] / seed[k] if ours[k] and seed[k] else None) for k in ours}))
        if os.path.exists(f"{d}/ru.json") and open(f"{d}/seedu.out").read().strip():
            ru = summary(f"{d}/ru.json")
            cru, mru = cpu(f"{d}/ru.time")
            unpaced = {"fps": ru["fps_received"], "p50": ru["latency_ms_p50"], "p95": ru["latency_ms_p95"],
                       "mbps": ru["kbps_received"] / 1000, "psnr": ru["psnr_db"], "cpu_peer": cru,
                       "cpu_pair": None, "rss": mru, "first": None}
            fields = dict(kv.split("=") for kv in open(f"{d}/seedu.out").read().split())
            cpu_pair, rss = cpu(f"{d}/seedu.time")
            fps = float(fields["fps"])
            seed_unpaced = {"fps": fps, "p50": float(fields["latency_ms_p50"]), "p95": float(fields["latency_ms_p95"]),
                            "mbps": fps * (w * h * 3 + 160) * 8 / 1e6, "psnr": None, "cpu_peer": None,
                            "cpu_pair": cpu_pair, "rss": rss, "first": None}
            rows.append(("chat raw <- python server, unpaced", size, unpaced))
            rows.append(("python pair, unpaced", size, seed_unpaced))
            rows.append(("ratio chat raw / python, unpaced", size,
                         {k: (unpaced[k] / seed_unpaced[k] if unpaced[k] and seed_unpaced[k] else None) for k in unpaced}))
    else:
        rows.append(("python seed: not run (../shared/seed missing?)", size, {}))

cols = [("fps", "recv fps", "{:.1f}"), ("p50", "p50 ms", "{:.1f}"), ("p95", "p95 ms", "{:.1f}"),
        ("mbps", "Mbit/s/dir", "{:.2f}"), ("psnr", "PSNR dB", "{:.1f}"), ("cpu_peer", "CPU/peer", "{:.2f}"),
        ("cpu_pair", "CPU pair", "{:.2f}"), ("rss", "RSS MiB", "{:.0f}"), ("first", "1st frame ms", "{:.0f}")]
print(f"\n{seconds:.0f} s per run, 30 fps, loopback; fps = worst direction, latency = capture to picture shown (worst direction;\nwith sound, chat holds each picture until its sound plays, for lip sync); ratios use the call with sound.")
print("CPU in cores (1.00 = one core busy); seed Mbit/s computed from raw frame size; ratios below 1 favour chat for all but fps and PSNR.\n")
print(f"{'system':36} {'size':9} " + " ".join(f"{title:>12}" for _, title, _ in cols))
for name, size, r in rows:
    cells = [(fmt.format(r[k]) if r.get(k) is not None else "-") for k, _, fmt in cols]
    if name.startswith("ratio"):
        cells = [(f"{r[k]:.3g}x" if r.get(k) is not None else "-") for k, _, _ in cols]
    print(f"{name:36} {size:9} " + " ".join(f"{c:>12}" for c in cells))

print("\nSound on the same calls (a tone each way, 10 ms Opus frames; worst direction), beside an ffmpeg Opus round trip")
print("(libopus low-delay, 10 ms frames, RTP over UDP loopback, fed and read in real time by scripts/opus_roundtrip.py).")
print("mouth-to-ear = first sample captured to played; A/V = picture shown minus its sound played (+: video later).\n")
print(f"{'system':36} {'size':9} {'m2e p50 ms':>11} {'m2e p95 ms':>11} {'A/V p50 ms':>11} {'A/V p95 ms':>11} {'kbit/s':>7} {'underruns':>10} {'concealed':>10}")
fmt = lambda v, f="{:.1f}": f.format(v) if v is not None else "-"
for size in sizes:
    d = os.path.join(tmp, size)
    a, b = summary(f"{d}/a.json"), summary(f"{d}/b.json")
    worst = lambda k: max((s[k] for s in (a, b) if s.get(k) is not None), default=None, key=abs)
    print(f"{'chat (Opus, QUIC datagrams)':36} {size:9} {fmt(worst('mouth_to_ear_ms_p50')):>11} {fmt(worst('mouth_to_ear_ms_p95')):>11}"
          f" {fmt(worst('av_offset_ms_p50')):>11} {fmt(worst('av_offset_ms_p95')):>11} {fmt(worst('audio_kbps_received')):>7}"
          f" {max(a['audio_underruns'], b['audio_underruns']):>10} {max(a['audio_concealed'], b['audio_concealed']):>10}")
ff = os.path.join(tmp, "ffmpeg-opus.out")
if os.path.exists(ff) and open(ff).read().strip():
    fields = dict(kv.split("=") for kv in open(ff).read().split())
    print(f"{'ffmpeg Opus (RTP, UDP)':36} {'-':9} {float(fields['p50']):11.1f} {float(fields['p95']):11.1f} {'-':>11} {'-':>11} {'-':>7} {'-':>10} {'-':>10}")
else:
    print("ffmpeg Opus: not run (see the error above)")
PY

[ -z "$camera_sizes" ] || python3 - "$tmp" $camera_sizes <<'PY'
import json, sys
tmp, sizes = sys.argv[1], sys.argv[2:]
def summary(path):
    with open(path) as f:
        return [json.loads(l) for l in f if '"summary":true' in l][-1]
def cpu(path):
    user, system, wall, rss_kb = open(path).read().split()[-4:]
    return (float(user) + float(system)) / float(wall), int(rss_kb) / 1024
print("\nThe camera path: both peers send the test pattern, or an MJPEG file through the code a camera's")
print("buffers take (decoded straight to I420), each with its window open under Xvfb; video only, 30 fps, loopback.\n")
print(f"{'system':40} {'size':9} {'recv fps':>9} {'p50 ms':>7} {'p95 ms':>7} {'Mbit/s':>7} {'CPU/peer':>9} {'CPU pair':>9} {'RSS MiB':>8}")
for size in sizes:
    for name, title in [("p", "chat, test pattern, window"), ("m", "chat, MJPEG camera-like file, window")]:
        d = f"{tmp}/camera-{size}"
        try:
            a, b = summary(f"{d}/{name}a.json"), summary(f"{d}/{name}b.json")
        except (OSError, IndexError):
            print(f"{title:40} {size:9} did not run (see {name}a.err / {name}b.err above)")
            continue
        (ca, ma), (cb, mb) = cpu(f"{d}/{name}a.time"), cpu(f"{d}/{name}b.time")
        print(f"{title:40} {size:9} {min(a['fps_received'], b['fps_received']):9.1f}"
              f" {max(a['latency_ms_p50'], b['latency_ms_p50']):7.1f} {max(a['latency_ms_p95'], b['latency_ms_p95']):7.1f}"
              f" {max(a['kbps_received'], b['kbps_received']) / 1000:7.2f} {max(ca, cb):9.2f} {ca + cb:9.2f} {max(ma, mb):8.0f}")
PY

[ -z "$net_scenarios" ] || python3 - "$tmp/net" $net_scenarios <<'PY'
import json, os, sys
net, scenarios = sys.argv[1], sys.argv[2:]
FIT_MS, FREEZE_FPS, BACK_SHARE, BEFORE_S = 150, 5, 0.75, 5

def read(path):
    """A --stats-json file's per-second lines and its summary."""
    with open(path) as f:
        # Lines without "summary" (a listener's {"reachability": ...}) carry no figures.
        records = [r for r in (json.loads(line) for line in f if line.strip()) if "summary" in r]
    return [r for r in records if not r["summary"]], [r for r in records if r["summary"]][-1]

# A per-second line at t_s covers (t_s - 1, t_s]: the seconds below count from where one starts.
def fit_s(seconds, start, until):
    """From `start` to the first second from which every p95 up to `until` is at most FIT_MS."""
    window = [s for s in seconds if start < s["t_s"] <= until]
    fits = [s["latency_ms_p95"] is not None and s["latency_ms_p95"] <= FIT_MS for s in window]
    return next((max(0.0, s["t_s"] - 1 - start) for i, s in enumerate(window) if all(fits[i:])), None)

def back_s(seconds, worse, recovers):
    """From `recovers` to the first second receiving 75 % of the video rate of the 5 s before `worse`.
    Received, not sent: kbps_sent counts what went into QUIC's buffers, which --no-adapt fills at its
    full rate whatever the link takes."""
    before = [s["kbps_received"] for s in seconds if worse - BEFORE_S < s["t_s"] <= worse]
    goal = BACK_SHARE * sum(before) / len(before)
    return next((max(0.0, s["t_s"] - 1 - recovers) for s in seconds
                 if s["t_s"] > recovers and s["kbps_received"] >= goal), None)

def longest_freeze_s(seconds):
    """The longest run of seconds with under FREEZE_FPS pictures shown, from the first picture on.
    (Not from frozen_frames: it counts intervals of the peer's nominal frame rate, so a peer
    adapting to 15 fps adds 15 "frozen" frames a second.)"""
    longest = run = 0
    for s in seconds:
        run = run + 1 if s["frames_received"] > 0 and s["fps_received"] < FREEZE_FPS else 0
        longest = max(longest, run)
    return longest

def latest(values):
    """The worst peer's seconds, where None (never) is worse than any number."""
    return "never" if None in values else f"{max(values):.0f}"

def worst(summaries, key):
    values = [s[key] for s in summaries if s[key] is not None]
    return f"{max(values):.1f}" if values else "-"

print("\nThrough impaired links (tests/network_bench.rs): 1280x720, 30 fps, a tone each way; adapting, and with")
print("--no-adapt (the fixed bitrate). fps = worst direction; latency = capture to picture shown, worst direction")
print("(chat's histograms top out at 2000 ms);")
print("concealed = sound frames made up / (100 a second of call), worst direction (after 10 frames with nothing the")
print(f"jitter buffer plays silence, uncounted); fit = seconds from the drop until per-second p95 stays at or under")
print(f"{FIT_MS} ms up to the restore (outage: from the link's return to the end); back = seconds from the restore (outage:")
print(f"return) until video arrives at {BACK_SHARE:.0%} of its mean rate in the {BEFORE_S} s before; freeze = longest run of seconds")
print(f"under {FREEZE_FPS} fps. fit, back, freeze: worst peer, to the second (the link's clock starts a little before the call's).")
print("kbit/s = video received, mean of the two directions.\n")
print(f"{'scenario':10} {'mode':11} {'fps':>6} {'p50 ms':>8} {'p95 ms':>8} {'concealed %':>12} {'fit s':>6} {'back s':>7}"
      f" {'freeze s':>9} {'kbit/s':>7}")
for scenario in scenarios:
    d = os.path.join(net, scenario)
    if not os.path.exists(os.path.join(d, "scenario.json")):
        continue
    link = json.load(open(os.path.join(d, "scenario.json")))
    worse, recovers, call_s = link["worse_at_s"], link["recovers_at_s"], link["call_s"]
    for mode, title in [("adaptive", "adaptive"), ("fixed", "--no-adapt")]:
        try:
            (a, sa), (b, sb) = (read(os.path.join(d, mode, f"{name}.json")) for name in "ab")
        except (OSError, IndexError, ValueError):
            print(f"{scenario:10} {title:11} not run, or no stats (see above)")
            continue
        fit = back = "-"
        if worse is not None:
            # A drop is fit while the link is down at its low rate; an outage only once it is back.
            start, until = (recovers, call_s) if link["outages_s"] else (worse, recovers)
            fit = latest([fit_s(s, start, until) for s in (a, b)])
            back = latest([back_s(s, worse, recovers) for s in (a, b)])
        concealed = max(s["audio_concealed"] / (100 * s["t_s"]) * 100 for s in (sa, sb))
        print(f"{scenario:10} {title:11} {min(sa['fps_received'], sb['fps_received']):6.1f}"
              f" {worst((sa, sb), 'latency_ms_p50'):>8} {worst((sa, sb), 'latency_ms_p95'):>8} {concealed:12.2f}"
              f" {fit:>6} {back:>7} {max(longest_freeze_s(a), longest_freeze_s(b)):9d}"
              f" {(sa['kbps_received'] + sb['kbps_received']) / 2:7.0f}")
PY
[ -z "$net_scenarios" ] || echo "Charts and stats files: $plots/ (scripts/plot_stats draws others)"

[ "${BENCH_CRITERION:-1}" = 0 ] || python3 - <<'PY'
import json, os
print("\nPer picture at 1280x720 (criterion median, target/criterion), beside openh264-rs's own converters:\n")
crit = "target/criterion"
def median_ms(*parts):
    path = os.path.join(crit, *parts, "new", "estimates.json")
    return json.load(open(path))["median"]["point_estimate"] / 1e6 if os.path.exists(path) else None
print(f"{'step':32} {'chat ms':>10} {'peer ms':>15} {'ratio':>8}  peer")
for group, peer_name, about in [("rgb_to_i420_720p", "openh264-rs", "openh264-rs"),
                                ("i420_to_rgb_720p", "openh264-rs", "openh264-rs"),
                                ("mjpeg_to_i420_720p", "via-rgb", "JPEG to RGB, openh264-rs to I420")]:
    ours, peer = median_ms(group, "chat"), median_ms(group, peer_name)
    if ours and peer:
        print(f"{group:32} {ours:10.3f} {peer:15.3f} {ours / peer:7.2f}x  {about}")
for name in ["yuyv_to_i420_720p", "scale_720p_to_540p", "window_1080p_from_720p",
             "pattern_frame_720p", "read_index_720p", "psnr_luma_720p", "encode_720p_p_frame"]:
    ours = median_ms(name)
    if ours is not None:
        print(f"{name:32} {ours:10.3f} {'-':>15} {'-':>8}")
group_ms = median_ms("decode_720p_group_of_60")
if group_ms:
    print(f"{'decode_720p (mean of 60)':32} {group_ms / 60:10.3f} {'-':>15} {'-':>8}")
print("\nPer 10 ms of sound (criterion median; the budget is 10 ms a frame):\n")
for name in ["opus_encode_10ms", "opus_decode_10ms", "echo_cancel_10ms"]:
    ours = median_ms(name)
    if ours is not None:
        print(f"{name:32} {ours:10.3f}")
adapt_ms = median_ms("adaptation_per_100ms")
if adapt_ms is not None:
    print("\nRate adaptation per 100 ms of a 30 fps call (receive meter, report, rate controller):\n")
    # c ms every 100 ms is c / 100 of a core, c per cent.
    print(f"{'adaptation_per_100ms':32} {adapt_ms:10.5f}   ({adapt_ms:.5f} % of a core)")
PY
