#!/usr/bin/env bash
# Benchmarks a chat call on loopback beside the original Python streamer, and its sound
# beside an ffmpeg Opus round trip, measured in the same run on the same machine, and
# prints the tables. Medians of one run each: the
# machine is shared and noisy, so compare ratios, not single digits.
#   BENCH_SECONDS (10)   length of each call
#   BENCH_SIZES ("640x480 1280x720")
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh ffmpeg
cargo build --release --locked 2>&1 | grep -v "^\s*\(Compiling\|Finished\)" >&2 || true
bin=$PWD/target/release/chat
seconds=${BENCH_SECONDS:-10}
sizes=${BENCH_SIZES:-640x480 1280x720}
seed=$(cd .. && pwd)/shared/seed/run.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
timed() { /usr/bin/time -f "%U %S %e %M" -o "$1" "${@:2}"; }

# The seed's run.sh gives its server 5 s to listen; a cold `import cv2` can take longer.
[ -x "$seed" ] && { python3 -c "import numpy, cv2" 2>/dev/null || python3 -m pip install -q numpy opencv-python-headless >&2; }
# The seed server binds without SO_REUSEADDR, so it fails on a port still in TIME_WAIT from
# an earlier run: let the kernel pick a port that is free in every sense.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
for size in $sizes; do
  dir=$tmp/$size
  mkdir -p "$dir"
  common=(--headless --source test --size "$size" --fps 30 --quiet --accept-new)
  # The QUIC call carries sound too (a tone each way, played to nowhere in real time).
  sound=(--audio-source tone --audio-sink none)
  timed "$dir/a.time" "$bin" --listen 127.0.0.1:0 --once "${common[@]}" "${sound[@]}" --certs "$dir/certs-a" \
    --stats-json "$dir/a.json" >"$dir/a.out" 2>"$dir/a.err" &
  a=$!
  for _ in $(seq 200); do grep -q "listening on" "$dir/a.out" 2>/dev/null && break; sleep 0.05; done
  port=$(grep -o '127.0.0.1:[0-9]*' "$dir/a.out" | head -1 | cut -d: -f2)
  timed "$dir/b.time" "$bin" --call "127.0.0.1:$port" --duration "$seconds" "${common[@]}" "${sound[@]}" --certs "$dir/certs-b" \
    --stats-json "$dir/b.json" >"$dir/b.out" 2>"$dir/b.err"
  wait "$a"
  # The same call without sound: nothing to hold the pictures for, so this is the video
  # path's own latency.
  timed "$dir/va.time" "$bin" --listen 127.0.0.1:0 --once "${common[@]}" --audio-source none --certs "$dir/certs-a" \
    --stats-json "$dir/va.json" >"$dir/va.out" 2>"$dir/va.err" &
  a=$!
  for _ in $(seq 200); do grep -q "listening on" "$dir/va.out" 2>/dev/null && break; sleep 0.05; done
  port=$(grep -o '127.0.0.1:[0-9]*' "$dir/va.out" | head -1 | cut -d: -f2)
  timed "$dir/vb.time" "$bin" --call "127.0.0.1:$port" --duration "$seconds" "${common[@]}" --audio-source none \
    --certs "$dir/certs-b" --stats-json "$dir/vb.json" >"$dir/vb.out" 2>"$dir/vb.err"
  wait "$a"
  # Raw mode, chat to chat, both ways at 30 fps.
  timed "$dir/ra.time" "$bin" --listen 127.0.0.1:0 --raw --once "${common[@]}" \
    --stats-json "$dir/ra.json" >"$dir/ra.out" 2>"$dir/ra.err" &
  a=$!
  for _ in $(seq 200); do grep -q "listening on" "$dir/ra.out" 2>/dev/null && break; sleep 0.05; done
  port=$(grep -o '127.0.0.1:[0-9]*' "$dir/ra.out" | head -1 | cut -d: -f2)
  timed "$dir/rb.time" "$bin" --call "127.0.0.1:$port" --raw --duration "$seconds" "${common[@]}" \
    --stats-json "$dir/rb.json" >"$dir/rb.out" 2>"$dir/rb.err"
  wait "$a"
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

echo "bench: ffmpeg Opus round trip" >&2
python3 scripts/opus_roundtrip.py "$seconds" >"$tmp/ffmpeg-opus.out" || echo "bench: the ffmpeg Opus round trip failed" >&2

echo "bench: per-picture costs (criterion)" >&2
cargo bench --locked --bench frame_path -- --warm-up-time 1 --measurement-time 3 >"$tmp/criterion.log" 2>&1 ||
  { cat "$tmp/criterion.log" >&2; exit 1; }

python3 - "$tmp" "$seconds" $sizes <<'PY'
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

print("\nPer picture at 1280x720 (criterion median, target/criterion), beside openh264-rs's own converters:\n")
crit = "target/criterion"
def median_ms(*parts):
    path = os.path.join(crit, *parts, "new", "estimates.json")
    return json.load(open(path))["median"]["point_estimate"] / 1e6 if os.path.exists(path) else None
print(f"{'step':32} {'chat ms':>10} {'openh264-rs ms':>15} {'ratio':>8}")
for group in ["rgb_to_i420_720p", "i420_to_rgb_720p"]:
    ours, peer = median_ms(group, "chat"), median_ms(group, "openh264-rs")
    if ours and peer:
        print(f"{group:32} {ours:10.3f} {peer:15.3f} {ours / peer:7.2f}x")
for name in ["pattern_frame_720p", "read_index_720p", "psnr_luma_720p", "encode_720p_p_frame"]:
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
PY
