//! Pictures and their journey: sources (camera, test pattern, Y4M), colour conversion,
//! H.264, quality measurement and the window.

pub mod codec;
pub mod convert;
pub mod frame;
pub mod pattern;
pub mod quality;
pub mod y4m;
