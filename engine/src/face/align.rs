//! Five-point face alignment: a least-squares similarity transform (rotation, uniform scale,
//! translation; Umeyama's solution in 2-D) from detected landmarks onto the ArcFace template, then a
//! bilinear warp with OpenCV `warpAffine` conventions (integer pixel coordinates, constant black border).

use image::RgbImage;

use crate::image::round_u8;

/// The standard ArcFace 112×112 five-point template (x, y): right eye, left eye (image-left first),
/// nose tip, right and left mouth corners.
pub const ARCFACE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// The ArcFace template scaled to a square crop of `size` pixels.
pub fn arcface_template(size: u32) -> [[f32; 2]; 5] {
    let s = size as f32 / 112.0;
    ARCFACE_112.map(|[x, y]| [x * s, y * s])
}

/// A 2-D similarity transform `p' = [[a, -b], [b, a]] · p + t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// scale · cos θ
    pub a: f32,
    /// scale · sin θ
    pub b: f32,
    /// Translation x.
    pub tx: f32,
    /// Translation y.
    pub ty: f32,
}

impl Similarity {
    /// Map a point.
    pub fn apply(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        ]
    }

    /// Uniform scale factor.
    pub fn scale(&self) -> f32 {
        self.a.hypot(self.b)
    }

    /// Rotation in radians.
    pub fn rotation(&self) -> f32 {
        self.b.atan2(self.a)
    }

    /// The inverse transform, or None when degenerate (zero scale).
    pub fn inverse(&self) -> Option<Similarity> {
        let det = self.a * self.a + self.b * self.b;
        if det <= f32::EPSILON || !det.is_finite() {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        Some(Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }
}

/// Least-squares similarity transform taking `src` points onto `dst` points.
/// Returns None for fewer than two points, non-finite input, or coincident source points.
pub fn estimate_similarity(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Similarity> {
    if src.len() != dst.len() || src.len() < 2 {
        return None;
    }
    let n = src.len() as f64;
    let mean = |p: &[[f32; 2]]| {
        let (sx, sy) = p.iter().fold((0f64, 0f64), |(sx, sy), q| {
            (sx + q[0] as f64, sy + q[1] as f64)
        });
        (sx / n, sy / n)
    };
    let (msx, msy) = mean(src);
    let (mdx, mdy) = mean(dst);
    let (mut num_a, mut num_b, mut den) = (0f64, 0f64, 0f64);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] as f64 - msx, s[1] as f64 - msy);
        let (dx, dy) = (d[0] as f64 - mdx, d[1] as f64 - mdy);
        num_a += sx * dx + sy * dy;
        num_b += sx * dy - sy * dx;
        den += sx * sx + sy * sy;
    }
    if den <= 1e-9 || !den.is_finite() || !num_a.is_finite() || !num_b.is_finite() {
        return None;
    }
    let (a, b) = (num_a / den, num_b / den);
    let tx = mdx - (a * msx - b * msy);
    let ty = mdy - (b * msx + a * msy);
    Some(Similarity {
        a: a as f32,
        b: b as f32,
        tx: tx as f32,
        ty: ty as f32,
    })
}

/// Robust similarity estimate (least median of squares over every pair of points, then a least-squares
/// refit on the inliers), as OpenCV's `estimateAffinePartial2D(.., LMEDS)`: one badly placed landmark
/// (an occluded mouth corner, a mis-detected eye) no longer drags the whole alignment.
pub fn estimate_similarity_robust(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Similarity> {
    let n = src.len();
    if n != dst.len() || n < 2 {
        return None;
    }
    if n < 4 {
        return estimate_similarity(src, dst);
    }
    let residual = |t: &Similarity, i: usize| {
        let p = t.apply(src[i]);
        let (dx, dy) = (p[0] - dst[i][0], p[1] - dst[i][1]);
        dx * dx + dy * dy
    };
    let mut best: Option<(f32, Similarity)> = None;
    for i in 0..n {
        for j in i + 1..n {
            let Some(t) = estimate_similarity(&[src[i], src[j]], &[dst[i], dst[j]]) else {
                continue;
            };
            let mut r: Vec<f32> = (0..n).map(|k| residual(&t, k)).collect();
            r.sort_by(f32::total_cmp);
            let median = r[n / 2];
            if best.as_ref().is_none_or(|(m, _)| median < *m) {
                best = Some((median, t));
            }
        }
    }
    let (median, t) = best?;
    // OpenCV's LMedS inlier bound: 2.5 × robust sigma, sigma = 1.4826 (1 + 5 / (n − 2)) √median.
    let sigma = 1.4826 * (1.0 + 5.0 / (n as f32 - 2.0)) * median.sqrt();
    let bound = (2.5 * sigma).powi(2).max(1e-6);
    let inliers: Vec<usize> = (0..n).filter(|&k| residual(&t, k) <= bound).collect();
    if inliers.len() < 2 {
        return Some(t);
    }
    let s: Vec<[f32; 2]> = inliers.iter().map(|&k| src[k]).collect();
    let d: Vec<[f32; 2]> = inliers.iter().map(|&k| dst[k]).collect();
    estimate_similarity(&s, &d)
}

/// Warp `src` with `transform` (source → destination coordinates) into a `width`×`height` image.
/// Each destination pixel samples the source bilinearly at the inverse-mapped point; outside is black.
pub fn warp_affine(
    src: &RgbImage,
    transform: &Similarity,
    width: u32,
    height: u32,
) -> Option<RgbImage> {
    let inv = transform.inverse()?;
    if width == 0 || height == 0 {
        return RgbImage::from_raw(width, height, Vec::new());
    }
    let (sw, sh) = (src.width() as i64, src.height() as i64);
    let raw = src.as_raw();
    let stride = sw as usize * 3;
    let mut out = vec![0u8; width as usize * height as usize * 3];
    let sample = |x: i64, y: i64, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= sw || y >= sh {
            0.0
        } else {
            raw[y as usize * stride + x as usize * 3 + c] as f32
        }
    };
    for (v, line) in out.chunks_exact_mut(width as usize * 3).enumerate() {
        for (u, px) in line.chunks_exact_mut(3).enumerate() {
            let [sx, sy] = inv.apply([u as f32, v as f32]);
            let (x0, y0) = (floor_i64(sx), floor_i64(sy));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            if x0 >= 0 && y0 >= 0 && x0 + 1 < sw && y0 + 1 < sh {
                // All four neighbours inside (nearly every pixel of a face crop): read them straight,
                // with the same arithmetic as the bordered path below.
                let i = y0 as usize * stride + x0 as usize * 3;
                let (top, bottom) = (&raw[i..i + 6], &raw[i + stride..i + stride + 6]);
                for (c, o) in px.iter_mut().enumerate() {
                    let t = top[c] as f32 * (1.0 - fx) + top[c + 3] as f32 * fx;
                    let b = bottom[c] as f32 * (1.0 - fx) + bottom[c + 3] as f32 * fx;
                    *o = round_u8(t * (1.0 - fy) + b * fy);
                }
            } else {
                for (c, o) in px.iter_mut().enumerate() {
                    let top = sample(x0, y0, c) * (1.0 - fx) + sample(x0 + 1, y0, c) * fx;
                    let bottom =
                        sample(x0, y0 + 1, c) * (1.0 - fx) + sample(x0 + 1, y0 + 1, c) * fx;
                    *o = round_u8(top * (1.0 - fy) + bottom * fy);
                }
            }
        }
    }
    RgbImage::from_raw(width, height, out)
}

/// `x.floor() as i64` without a libm call (baseline x86-64 has no rounding instruction), clamped to
/// ±2^40 so that the neighbour arithmetic (`x0 + 1`) cannot overflow: a coordinate that far out is
/// outside any image either way.
#[inline]
fn floor_i64(x: f32) -> i64 {
    const FAR: i64 = 1 << 40;
    let t = (x as i64).clamp(-FAR, FAR);
    if (t as f32) > x {
        t - 1
    } else {
        t
    }
}

/// Align a face given its five landmarks onto the ArcFace template at `size`×`size`.
pub fn align_face(src: &RgbImage, landmarks: &[[f32; 2]; 5], size: u32) -> Option<RgbImage> {
    let t = estimate_similarity(landmarks, &arcface_template(size))?;
    warp_affine(src, &t, size, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn recovers_a_known_similarity_exactly() {
        let truth = Similarity {
            a: 0.8 * 30f32.to_radians().cos(),
            b: 0.8 * 30f32.to_radians().sin(),
            tx: 12.0,
            ty: -7.5,
        };
        let src = [
            [10.0, 20.0],
            [60.0, 22.0],
            [35.0, 45.0],
            [15.0, 70.0],
            [58.0, 71.0],
        ];
        let dst = src.map(|p| truth.apply(p));
        let est = estimate_similarity(&src, &dst).unwrap();
        assert!(close(est.a, truth.a, 1e-5) && close(est.b, truth.b, 1e-5));
        assert!(close(est.tx, truth.tx, 1e-3) && close(est.ty, truth.ty, 1e-3));
        assert!(close(est.scale(), 0.8, 1e-5));
        assert!(close(est.rotation().to_degrees(), 30.0, 1e-3));
    }

    #[test]
    fn inverse_round_trips() {
        let t = Similarity {
            a: 1.3,
            b: -0.4,
            tx: 5.0,
            ty: 9.0,
        };
        let inv = t.inverse().unwrap();
        let p = [17.0, -3.0];
        let q = inv.apply(t.apply(p));
        assert!(close(p[0], q[0], 1e-4) && close(p[1], q[1], 1e-4));
    }

    #[test]
    fn degenerate_points_are_refused() {
        let same = [[5.0, 5.0]; 5];
        assert!(estimate_similarity(&same, &ARCFACE_112).is_none());
        assert!(
            estimate_similarity(&[[f32::NAN, 0.0], [1.0, 1.0]], &[[0.0, 0.0], [1.0, 1.0]])
                .is_none()
        );
    }

    #[test]
    fn least_squares_is_robust_to_symmetric_noise() {
        // Template points translated by (100, 50) with ±1 px noise that cancels: estimate stays near identity.
        let noise = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.0, 0.0]];
        let src: Vec<[f32; 2]> = ARCFACE_112
            .iter()
            .zip(noise)
            .map(|(p, n)| [p[0] + 100.0 + n[0], p[1] + 50.0 + n[1]])
            .collect();
        let t = estimate_similarity(&src, &ARCFACE_112).unwrap();
        assert!(close(t.scale(), 1.0, 0.03));
        assert!(close(t.rotation().to_degrees(), 0.0, 1.5));
    }

    /// The per-pixel form the warp had before its inside-the-image fast path: the oracle.
    fn warp_reference(src: &RgbImage, t: &Similarity, w: u32, h: u32) -> RgbImage {
        let inv = t.inverse().unwrap();
        let sample = |x: i64, y: i64, c: usize| -> f32 {
            if x < 0 || y < 0 || x >= src.width() as i64 || y >= src.height() as i64 {
                0.0
            } else {
                src.get_pixel(x as u32, y as u32)[c] as f32
            }
        };
        RgbImage::from_fn(w, h, |u, v| {
            let [sx, sy] = inv.apply([u as f32, v as f32]);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            image::Rgb(std::array::from_fn(|c| {
                let top = sample(x0, y0, c) * (1.0 - fx) + sample(x0 + 1, y0, c) * fx;
                let bottom = sample(x0, y0 + 1, c) * (1.0 - fx) + sample(x0 + 1, y0 + 1, c) * fx;
                (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
            }))
        })
    }

    #[test]
    fn the_libm_free_floor_agrees_with_std() {
        let (sweep, extremes) = crate::image::rounding_probes();
        for y in sweep {
            assert_eq!(floor_i64(y), y.floor() as i64, "floor {y}");
        }
        for y in extremes {
            assert!(floor_i64(y).abs() <= (1 << 40) + 1, "floor {y}");
        }
    }

    #[test]
    fn warp_equals_the_per_pixel_form_inside_and_across_the_border() {
        // Rotated, scaled and shifted so that the crop covers the image's edges and corners too.
        let src = RgbImage::from_fn(61, 47, |x, y| {
            image::Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, (255 - x * 4) as u8])
        });
        for (angle, scale, tx, ty) in [
            (0.0f32, 1.0f32, 0.0f32, 0.0f32),
            (12.0, 1.7, -20.0, -9.0),
            (-33.0, 0.6, 15.0, 30.0),
            (90.0, 2.3, 40.0, -60.0),
        ] {
            let (sin, cos) = angle.to_radians().sin_cos();
            let t = Similarity {
                a: scale * cos,
                b: scale * sin,
                tx,
                ty,
            };
            let got = warp_affine(&src, &t, 112, 112).unwrap();
            assert_eq!(got, warp_reference(&src, &t, 112, 112), "angle {angle}");
        }
        // Degenerate requests: an empty output, and a transform mapping far outside the image.
        let id = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        assert_eq!(warp_affine(&src, &id, 0, 5).unwrap().dimensions(), (0, 5));
        // Scale 1e-3 (about the smallest `inverse` accepts): every destination pixel but the origin
        // maps ≥ 1,000 px away, so they are black; the origin samples source pixel (0, 0).
        let far = Similarity {
            a: 1e-3,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        let img = warp_affine(&src, &far, 4, 4).expect("invertible");
        assert_eq!(img.get_pixel(0, 0), src.get_pixel(0, 0));
        assert!(img.as_raw()[3..].iter().all(|&v| v == 0));
    }

    #[test]
    fn warp_with_pure_translation_shifts_pixels() {
        let src = RgbImage::from_fn(20, 20, |x, y| image::Rgb([x as u8 * 10, y as u8 * 10, 0]));
        let t = Similarity {
            a: 1.0,
            b: 0.0,
            tx: -5.0,
            ty: -3.0,
        };
        let out = warp_affine(&src, &t, 10, 10).unwrap();
        assert_eq!(out.get_pixel(0, 0).0, [50, 30, 0]);
        assert_eq!(out.get_pixel(4, 2).0, [90, 50, 0]);
        // Outside the source is black.
        let far = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 100.0,
            ty: 0.0,
        };
        assert!(warp_affine(&src, &far, 4, 4)
            .unwrap()
            .pixels()
            .all(|p| p.0 == [0, 0, 0]));
    }

    #[test]
    fn template_landmarks_map_to_the_template() {
        // Landmarks already on the template give the identity transform.
        let t = estimate_similarity(&ARCFACE_112, &arcface_template(112)).unwrap();
        assert!(close(t.a, 1.0, 1e-6) && close(t.b, 0.0, 1e-6) && close(t.tx, 0.0, 1e-4));
    }
}
