//! Resampling matched to the pre-processing the models were trained with: OpenCV's `INTER_LINEAR`
//! (half-pixel centres, no anti-aliasing) and `INTER_AREA` (box average when shrinking).

use image::RgbImage;

/// Bilinear resize with OpenCV `INTER_LINEAR` semantics.
pub fn resize_bilinear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = src.dimensions();
    let mut dst = RgbImage::new(width.max(1), height.max(1));
    if sw == 0 || sh == 0 {
        return dst;
    }
    let sx = sw as f32 / width.max(1) as f32;
    let sy = sh as f32 / height.max(1) as f32;
    let raw = src.as_raw();
    let stride = sw as usize * 3;
    // Precompute the horizontal taps once per column.
    let cols: Vec<(usize, usize, f32)> = (0..width)
        .map(|x| {
            let fx = ((x as f32 + 0.5) * sx - 0.5).max(0.0);
            let x0 = (fx.floor() as usize).min(sw as usize - 1);
            let x1 = (x0 + 1).min(sw as usize - 1);
            (x0 * 3, x1 * 3, fx - x0 as f32)
        })
        .collect();
    for y in 0..height {
        let fy = ((y as f32 + 0.5) * sy - 0.5).max(0.0);
        let y0 = (fy.floor() as usize).min(sh as usize - 1);
        let y1 = (y0 + 1).min(sh as usize - 1);
        let wy = fy - y0 as f32;
        let (r0, r1) = (&raw[y0 * stride..][..stride], &raw[y1 * stride..][..stride]);
        for (x, &(x0, x1, wx)) in cols.iter().enumerate() {
            let mut px = [0u8; 3];
            for (c, out) in px.iter_mut().enumerate() {
                let top = r0[x0 + c] as f32 * (1.0 - wx) + r0[x1 + c] as f32 * wx;
                let bottom = r1[x0 + c] as f32 * (1.0 - wx) + r1[x1 + c] as f32 * wx;
                *out = round_u8(top * (1.0 - wy) + bottom * wy);
            }
            dst.put_pixel(x as u32, y, image::Rgb(px));
        }
    }
    dst
}

/// Box-average resize (OpenCV `INTER_AREA` when shrinking); falls back to bilinear when enlarging.
pub fn resize_area(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = src.dimensions();
    if width >= sw || height >= sh {
        return resize_bilinear(src, width, height);
    }
    let weights = |n_src: u32, n_dst: u32| -> Vec<Vec<(usize, f32)>> {
        let scale = n_src as f32 / n_dst as f32;
        (0..n_dst)
            .map(|d| {
                let start = d as f32 * scale;
                let end = start + scale;
                let mut taps = Vec::new();
                let mut s = start.floor() as u32;
                while (s as f32) < end && s < n_src {
                    let w = (end.min(s as f32 + 1.0) - start.max(s as f32)) / scale;
                    if w > 1e-6 {
                        taps.push((s as usize, w));
                    }
                    s += 1;
                }
                taps
            })
            .collect()
    };
    let (wx, wy) = (weights(sw, width), weights(sh, height));
    let raw = src.as_raw();
    let stride = sw as usize * 3;
    // Horizontal pass into f32 rows, then vertical.
    let mut tmp = vec![0f32; sh as usize * width as usize * 3];
    for y in 0..sh as usize {
        let row = &raw[y * stride..][..stride];
        for (x, taps) in wx.iter().enumerate() {
            for c in 0..3 {
                tmp[(y * width as usize + x) * 3 + c] =
                    taps.iter().map(|&(s, w)| row[s * 3 + c] as f32 * w).sum();
            }
        }
    }
    let mut dst = RgbImage::new(width, height);
    for (y, taps) in wy.iter().enumerate() {
        for x in 0..width as usize {
            let mut px = [0u8; 3];
            for (c, out) in px.iter_mut().enumerate() {
                let v: f32 = taps
                    .iter()
                    .map(|&(s, w)| tmp[(s * width as usize + x) * 3 + c] * w)
                    .sum();
                *out = round_u8(v);
            }
            dst.put_pixel(x as u32, y as u32, image::Rgb(px));
        }
    }
    dst
}

/// `x.round().clamp(0.0, 255.0) as u8` for a weighted mix of bytes, without a libm call (baseline
/// x86-64 has no rounding instruction): half away from zero, as `round`; `x - trunc(x)` is exact here.
#[inline]
pub(crate) fn round_u8(x: f32) -> u8 {
    if x <= 0.0 {
        return 0;
    }
    let t = x as u32;
    // Branch-free: whether a fraction is ≥ 0.5 is a coin toss the predictor would lose.
    (t.min(255) + (x - t as f32 >= 0.5) as u32).min(255) as u8
}

/// Where the libm-free rounding helpers (this file's [`round_u8`], the warp's floor) are checked
/// against `std`: a sweep over ±300 with the half-way points and their float neighbours, and the
/// values no pixel arithmetic should produce (non-finite, huge).
#[cfg(test)]
pub(crate) fn rounding_probes() -> (Vec<f32>, [f32; 7]) {
    let mut sweep = Vec::new();
    let mut x = -300.0f32;
    while x < 300.0 {
        sweep.extend([x, x + 0.5, x - 0.5, x + 0.49999997, x + 0.50000006]);
        x += 0.123_456_7;
    }
    let extremes = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e30,
        -1e30,
        255.5,
        5e9,
    ];
    (sweep, extremes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_u8_agrees_with_std() {
        let (sweep, extremes) = rounding_probes();
        for y in sweep.into_iter().chain(extremes) {
            assert_eq!(round_u8(y), y.round().clamp(0.0, 255.0) as u8, "round {y}");
        }
    }

    #[test]
    fn bilinear_identity_and_constant() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 7]));
        assert_eq!(resize_bilinear(&img, 7, 5), img);
        let flat = RgbImage::from_pixel(9, 9, image::Rgb([50, 60, 70]));
        assert!(resize_bilinear(&flat, 4, 13)
            .pixels()
            .all(|p| p.0 == [50, 60, 70]));
    }

    #[test]
    fn area_halving_averages_blocks() {
        let img = RgbImage::from_fn(4, 2, |x, _| {
            image::Rgb([if x % 2 == 0 { 0 } else { 200 }, 0, 0])
        });
        let half = resize_area(&img, 2, 1);
        assert!(half.pixels().all(|p| p.0[0] == 100));
    }
}
