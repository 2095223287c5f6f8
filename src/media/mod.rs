//! Pictures and their journey: sources (camera, test pattern, Y4M), colour conversion and
//! scaling, H.264 (with an encoder that follows a changing target), the encoder and decoder
//! threads, quality measurement and the window; and sound (`audio`), kept in step with the
//! pictures by `lip_sync`.

pub mod adaptive_encoder;
pub mod audio;
pub mod camera;
pub mod camera_buffer;
pub mod camera_file;
pub mod camera_format;
pub mod codec;
pub mod convert;
pub mod decode_loop;
pub mod display;
pub mod encode_loop;
pub mod encoder_options;
pub mod frame;
pub mod frame_pacer;
pub mod freshness;
pub mod lip_sync;
pub mod mjpeg;
pub mod mjpeg_stream;
pub mod pattern;
pub mod quality;
pub mod scale;
pub mod seed_pattern;
pub mod source;
pub mod sps;
pub mod y4m;
