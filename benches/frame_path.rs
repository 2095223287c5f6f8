//! Per-picture costs on the path from capture to window, at 1280x720, each beside the
//! same job done by openh264-rs's own converters where one exists (the peer in this run).
//! Also the sound path's per-frame costs, and the rate adaptation's per 100 ms. Run: cargo bench --bench frame_path (scripts/bench.sh prints the table).

use std::hint::black_box;

use chat::adapt::controller::RateController;
use chat::adapt::estimator::TransportStats;
use chat::adapt::policy::PolicyConfig;
use chat::adapt::receive_meter::{FrameArrival, ReceiveMeter};
use chat::media::camera_buffer::{PixelLayout, buffer_to_i420};
use chat::media::codec::{EncoderSettings, VideoDecoder, VideoEncoder};
use chat::media::convert::{Rect, blit_i420, i420_to_bgr, rgb_to_i420};
use chat::media::pattern::{pattern_frame, read_index};
use chat::media::quality::psnr;
use chat::media::scale::scale_i420;
use criterion::{Criterion, criterion_group, criterion_main};
use openh264::formats::{RgbSliceU8, YUVBuffer};

const W: usize = 1280;
const H: usize = 720;

fn rgb_picture() -> Vec<u8> {
    (0..W * H * 3).map(|i| (i * 7 % 251) as u8).collect()
}

fn conversion(c: &mut Criterion) {
    let rgb = rgb_picture();
    let mut group = c.benchmark_group("rgb_to_i420_720p");
    group.bench_function("chat", |b| b.iter(|| rgb_to_i420(black_box(&rgb), W, H, 0)));
    group.bench_function("openh264-rs", |b| {
        b.iter(|| YUVBuffer::from_rgb8_source(RgbSliceU8::new(black_box(&rgb), (W, H))))
    });
    group.finish();

    let frame = pattern_frame(7, W, H, 0);
    let mut window = vec![0u32; W * H];
    let mut rgb_out = vec![0u8; W * H * 3];
    // openh264-rs converts decoded pictures only: decode one to compare on the same picture.
    let mut encoder = openh264::encoder::Encoder::new().unwrap();
    let idr = encoder.encode(&frame).unwrap().to_vec();
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    let decoded = decoder.decode(&idr).unwrap().expect("an IDR picture decodes alone");
    let mut group = c.benchmark_group("i420_to_rgb_720p");
    group.bench_function("chat", |b| {
        b.iter(|| blit_i420(black_box(&frame), &mut window, W, Rect { x: 0, y: 0, width: W, height: H }))
    });
    group.bench_function("openh264-rs", |b| b.iter(|| decoded.write_rgb8(black_box(&mut rgb_out))));
    group.finish();
}

fn pattern_and_quality(c: &mut Criterion) {
    let frame = pattern_frame(7, W, H, 0);
    c.bench_function("pattern_frame_720p", |b| b.iter(|| pattern_frame(black_box(7), W, H, 0)));
    c.bench_function("read_index_720p", |b| b.iter(|| read_index(black_box(&frame))));
    let other = pattern_frame(8, W, H, 0);
    c.bench_function("psnr_luma_720p", |b| b.iter(|| psnr(black_box(&frame.y), black_box(&other.y))));
}

fn codec(c: &mut Criterion) {
    let settings = EncoderSettings { fps: 30, bitrate_kbps: 1935, keyframe_interval_secs: 0 };
    let frames: Vec<_> = (0..60).map(|i| pattern_frame(i, W, H, u64::from(i) * 33_333)).collect();
    let mut encoder = VideoEncoder::new(settings).unwrap();
    let mut i = 0usize;
    let mut clock = 0u64;
    c.bench_function("encode_720p_p_frame", |b| {
        b.iter(|| {
            let mut frame = frames[i % frames.len()].clone();
            clock += 33_333;
            frame.capture_us = clock;
            i += 1;
            encoder.encode(&frame).unwrap()
        })
    });

    let mut encoder = VideoEncoder::new(settings).unwrap();
    let packets: Vec<_> = frames.iter().filter_map(|f| encoder.encode(f).unwrap()).collect();
    c.bench_function("decode_720p_group_of_60", |b| {
        b.iter(|| {
            let mut decoder = VideoDecoder::new().unwrap();
            for p in &packets {
                black_box(decoder.decode(&p.data, 0).unwrap());
            }
        })
    });
}

/// Per 10 ms audio frame: Opus both ways, and the echo canceller (the sound path's only
/// heavy work; a frame's budget is 10 ms).
fn sound(c: &mut Criterion) {
    use chat::media::audio::echo::EchoCanceller;
    use chat::media::audio::opus_codec::{AudioDecoder, AudioEncoder};
    use chat::media::audio::tone::Tone;
    let mut tone = Tone::new(440.0);
    let frames: Vec<_> = (0..100).map(|_| tone.next_frame()).collect();
    let mut encoder = AudioEncoder::new().unwrap();
    let mut i = 0;
    c.bench_function("opus_encode_10ms", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(encoder.encode(&frames[i]).unwrap().len())
        })
    });
    let mut encoder = AudioEncoder::new().unwrap();
    let packets: Vec<Vec<u8>> = frames.iter().map(|f| encoder.encode(f).unwrap().to_vec()).collect();
    let mut decoder = AudioDecoder::new().unwrap();
    let mut out = frames[0];
    c.bench_function("opus_decode_10ms", |b| {
        b.iter(|| {
            i = (i + 1) % packets.len();
            decoder.decode(black_box(&packets[i]), &mut out).unwrap()
        })
    });
    let echo = EchoCanceller::new();
    c.bench_function("echo_cancel_10ms", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            echo.far_end(&frames[i], 20_000);
            let mut mic = frames[(i + 3) % frames.len()];
            echo.near_end(&mut mic, 0);
            black_box(mic[0])
        })
    });
}

/// 100 ms of a 30 fps call for the adaptation core: three frames into the receive meter,
/// its report, and on the sender the peer's report and quinn's statistics into the rate
/// controller, with the send window read back.
fn adaptation(c: &mut Criterion) {
    let config = PolicyConfig { ceiling_kbps: 1935, max_width: 1280, max_height: 720, camera_fps: 30 };
    let (mut meter, mut controller) = (ReceiveMeter::new(), RateController::new(config));
    let (mut now_us, mut seq) = (0u64, 0u64);
    c.bench_function("adaptation_per_100ms", |b| {
        b.iter(|| {
            for _ in 0..3 {
                seq += 1;
                now_us += 33_333;
                // A queue that builds and drains, so the estimator cuts and climbs.
                let queue_us = (seq % 90) * 1_000;
                let frame = FrameArrival { arrival_us: now_us + 20_000 + queue_us, sent_us: now_us, bytes: 6_000, seq };
                meter.on_frame(frame);
            }
            let report = meter.report(now_us + 20_000);
            controller.on_report(now_us, black_box(&report));
            let stats = TransportStats {
                rtt_ms: 40,
                cwnd_bytes: 60_000,
                lost_packets: seq / 50,
                sent_packets: seq * 5,
                sent_bytes: seq * 5_000,
            };
            controller.on_transport_stats(now_us, &stats);
            black_box(controller.send_window_bytes())
        })
    });
}

/// A camera's pictures to I420: a webcam's MJPEG (4:2:2, quality 85) decoded straight to
/// its YUV planes, beside decoding it to RGB (what nokhwa does) and converting that with
/// openh264-rs; YUYV; and the scaling of the adaptation ladder and of a full-screen window.
fn camera_path(c: &mut Criterion) {
    let picture = pattern_frame(7, W, H, 0);
    let bgr = i420_to_bgr(&picture);
    let rgb: Vec<u8> = bgr.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_fastest_defaults(); // baseline JPEG, as cameras send
    compress.set_size(W, H);
    compress.set_quality(85.0);
    compress.set_chroma_sampling_pixel_sizes((2, 1), (2, 1));
    let mut started = compress.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&rgb).unwrap();
    let jpeg = started.finish().unwrap();

    let mut group = c.benchmark_group("mjpeg_to_i420_720p");
    group.bench_function("chat", |b| b.iter(|| buffer_to_i420(PixelLayout::Mjpeg, black_box(&jpeg), (W, H), 0)));
    group.bench_function("via-rgb", |b| {
        b.iter(|| {
            let mut started = mozjpeg::Decompress::new_mem(black_box(&jpeg)).unwrap().rgb().unwrap();
            let rgb: Vec<u8> = started.read_scanlines().unwrap();
            started.finish().unwrap();
            YUVBuffer::from_rgb8_source(RgbSliceU8::new(&rgb, (W, H)))
        })
    });
    group.finish();

    let yuyv: Vec<u8> = picture
        .y
        .chunks_exact(2)
        .enumerate()
        .flat_map(|(i, y)| {
            let (row, pair) = (i * 2 / W, i % (W / 2));
            let c = (row / 2) * (W / 2) + pair;
            [y[0], picture.u[c], y[1], picture.v[c]]
        })
        .collect();
    c.bench_function("yuyv_to_i420_720p", |b| {
        b.iter(|| buffer_to_i420(PixelLayout::Yuyv, black_box(&yuyv), (W, H), 0))
    });
    c.bench_function("scale_720p_to_540p", |b| b.iter(|| scale_i420(black_box(&picture), 960, 540)));
    let mut screen = vec![0u32; 1920 * 1080];
    c.bench_function("window_1080p_from_720p", |b| {
        b.iter(|| blit_i420(black_box(&picture), &mut screen, 1920, Rect { x: 0, y: 0, width: 1920, height: 1080 }))
    });
}

criterion_group!(benches, conversion, camera_path, pattern_and_quality, codec, sound, adaptation);
criterion_main!(benches);
