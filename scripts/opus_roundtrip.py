#!/usr/bin/env python3
"""Mouth-to-ear latency of an ffmpeg Opus round trip on loopback, for scripts/bench.sh to
print beside chat's own: a sender ffmpeg encodes 48 kHz mono PCM from its stdin with
libopus (low-delay mode, 10 ms frames, chat's settings) and sends RTP over UDP; a
receiver ffmpeg decodes it to PCM on its stdout. This script feeds the sender in real
time, 10 ms at a time, with a short 1 kHz burst every half second, and times each burst
from the moment it was written to the moment it comes out.

Usage: opus_roundtrip.py SECONDS  -> prints "p50=.. p95=.. bursts=.."
"""
import math, os, socket, struct, subprocess, sys, tempfile, threading, time

RATE, FRAME = 48000, 480
seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port - port % 2  # RTP wants an even port


tmp = tempfile.mkdtemp()
sdp = os.path.join(tmp, "opus.sdp")
port = free_udp_port()
quiet = ["-hide_banner", "-loglevel", "error", "-nostdin"]
sender = subprocess.Popen(
    ["ffmpeg", *quiet[:3], "-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", "pipe:0",
     "-c:a", "libopus", "-application", "lowdelay", "-frame_duration", "10", "-b:a", "24k",
     "-flush_packets", "1", "-f", "rtp", "-sdp_file", sdp, f"rtp://127.0.0.1:{port}"],
    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)

silence = b"\0\0" * FRAME
burst = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * 1000 * n / RATE))) for n in range(FRAME))
writes = {}  # burst number -> time written
start = time.monotonic()


def feed():
    n = 0
    total = int(seconds * 100)
    while n < total:
        due = start + n * 0.01
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        is_burst = n % 50 == 25
        if is_burst:
            # The chunk stands for the 10 ms a microphone heard until now: like chat's
            # figures, date the burst from its first sample.
            writes[n // 50] = time.monotonic() - 0.010
        try:
            sender.stdin.write(burst if is_burst else silence)
            sender.stdin.flush()
        except BrokenPipeError:
            return
        n += 1
    sender.stdin.close()


feeder = threading.Thread(target=feed)
feeder.start()
for _ in range(200):
    if os.path.exists(sdp) and os.path.getsize(sdp) > 0:
        break
    time.sleep(0.05)
receiver = subprocess.Popen(
    ["ffmpeg", *quiet, "-protocol_whitelist", "file,udp,rtp", "-fflags", "nobuffer", "-flags", "low_delay",
     "-probesize", "32", "-analyzeduration", "0", "-i", sdp, "-f", "s16le", "-ar", str(RATE), "-ac", "1", "pipe:1"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

latencies = []
loud_until = -1.0
while True:
    chunk = receiver.stdout.read1(4096) if hasattr(receiver.stdout, "read1") else receiver.stdout.read(4096)
    now = time.monotonic()
    if not chunk or now - start > seconds + 2:
        break
    samples = struct.unpack(f"<{len(chunk) // 2}h", chunk[: len(chunk) // 2 * 2])
    if max((abs(s) for s in samples), default=0) > 4000 and now > loud_until:
        # The burst written closest before now is the one that came out.
        sent = [t for t in writes.values() if t <= now]
        if sent:
            latencies.append((now - max(sent)) * 1000)
        loud_until = now + 0.2
feeder.join()
for p in (sender, receiver):
    p.kill()
    p.wait()
latencies = sorted(latencies[1:])  # the first burst also pays for the receiver's start-up
if not latencies:
    sys.exit("no burst came back through ffmpeg")
q = lambda f: latencies[min(len(latencies) - 1, int(f * (len(latencies) - 1) + 0.5))]
print(f"p50={q(0.5):.1f} p95={q(0.95):.1f} bursts={len(latencies)}")
