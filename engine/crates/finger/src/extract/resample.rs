//! Stage 0: bring the image to 500 dpi.

use super::plane::{bilinear, Plane};
use crate::params::TARGET_DPI;

/// Converts to f32 and rescales to [`TARGET_DPI`] with bilinear
/// interpolation (area-averaging first when shrinking by more than 2×, so
/// ridges do not alias).
pub(crate) fn to_target_dpi(width: usize, height: usize, pixels: &[u8], dpi: u16) -> Plane<f32> {
    let mut p = Plane {
        width,
        height,
        data: pixels.iter().map(|&v| f32::from(v)).collect(),
    };
    if dpi == TARGET_DPI {
        return p;
    }
    let scale = f32::from(TARGET_DPI) / f32::from(dpi);
    if scale < 0.5 {
        let r = (0.5 / scale).floor() as usize;
        p = super::plane::box_mean(&p, r);
    }
    let nw = ((width as f32 * scale).round() as usize).max(1);
    let nh = ((height as f32 * scale).round() as usize).max(1);
    let mut out = Plane::new(nw, nh);
    for y in 0..nh {
        for x in 0..nw {
            let sx = (x as f32 + 0.5) / scale - 0.5;
            let sy = (y as f32 + 0.5) / scale - 0.5;
            out.set(x, y, bilinear(&p, sx, sy));
        }
    }
    out
}
