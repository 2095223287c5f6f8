//! Which of a camera's formats to ask for: the size nearest the one wanted, at the wanted
//! frame rate if it offers it, and of those the layout cheapest to turn into I420.

use super::camera_buffer::PixelLayout;

/// One format a camera offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offered {
    pub width: usize,
    pub height: usize,
    pub fps: u32,
    pub layout: PixelLayout,
}

/// The format to open: among those nearest `wanted` in picture area (then in shape), the
/// ones that reach `fps` (or else the fastest of them), cheapest to convert first. `None`
/// if the camera offers none we can use.
pub fn choose_format(offered: &[Offered], wanted: (usize, usize), fps: u32) -> Option<Offered> {
    let distance = |o: &Offered| {
        let area = (o.width * o.height).abs_diff(wanted.0 * wanted.1);
        (area, o.width.abs_diff(wanted.0))
    };
    let nearest = offered.iter().map(distance).min()?;
    let sized: Vec<&Offered> = offered.iter().filter(|o| distance(o) == nearest).collect();
    let fastest = sized.iter().map(|o| o.fps).max()?;
    let rate = fastest.min(fps);
    sized.into_iter().filter(|o| o.fps >= rate).min_by_key(|o| (o.layout.cost_rank(), o.fps.abs_diff(fps))).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use PixelLayout::*;

    fn offer(width: usize, height: usize, fps: u32, layout: PixelLayout) -> Offered {
        Offered { width, height, fps, layout }
    }

    /// A typical USB 2 webcam: YUYV only at low rates for large sizes, MJPEG at 30.
    fn webcam() -> Vec<Offered> {
        vec![
            offer(640, 480, 30, Yuyv),
            offer(640, 480, 30, Mjpeg),
            offer(1280, 720, 10, Yuyv),
            offer(1280, 720, 30, Mjpeg),
            offer(1920, 1080, 5, Yuyv),
            offer(1920, 1080, 30, Mjpeg),
        ]
    }

    #[test]
    fn the_cheapest_layout_that_keeps_the_rate_is_chosen() {
        assert_eq!(choose_format(&webcam(), (640, 480), 30), Some(offer(640, 480, 30, Yuyv)));
        // YUYV is cheaper, but 720p YUYV gives only 10 fps.
        assert_eq!(choose_format(&webcam(), (1280, 720), 30), Some(offer(1280, 720, 30, Mjpeg)));
        assert_eq!(choose_format(&webcam(), (1280, 720), 10), Some(offer(1280, 720, 10, Yuyv)));
    }

    #[test]
    fn the_nearest_size_wins_and_a_slow_camera_gives_what_it_can() {
        assert_eq!(choose_format(&webcam(), (1920, 1088), 30), Some(offer(1920, 1080, 30, Mjpeg)));
        let slow = [offer(1280, 720, 15, Mjpeg), offer(1280, 720, 10, Yuyv), offer(320, 240, 30, Yuyv)];
        assert_eq!(choose_format(&slow, (1280, 720), 30), Some(offer(1280, 720, 15, Mjpeg)));
        assert_eq!(choose_format(&[], (1280, 720), 30), None);
    }
}
