//! Stage 3a: ridge direction from window spectra.
//!
//! A window of parallel ridges has one strong Fourier component, at the
//! ridge frequency, whose wave vector points across the ridges. Unlike the
//! gradient tensor, that peak is not disturbed by dotted, faint or pored
//! ridges, whose every dot contributes gradients in all directions.

use super::plane::{bilinear, Plane};
use crate::params::{SPECTRAL_MAX_PERIOD, SPECTRAL_MIN_PERIOD, SPECTRAL_WINDOW};
use std::f32::consts::PI;

/// Windows are analysed at half resolution (a 2×2 box average): ridge
/// periods of 4.5 px and up stay above the Nyquist limit and the transform
/// costs a quarter. The box is a weak anti-alias filter, so pores and noise
/// at 3–4 px fold into the band's short end; the refinement below and the
/// blend with the gradient tensor keep that from deciding a direction.
const DOWNSAMPLE: usize = 2;
const _: () = assert!(DOWNSAMPLE == 2, "downsample() averages 2×2 blocks");
const _: () = assert!(
    SPECTRAL_WINDOW / DOWNSAMPLE >= 8,
    "the band needs a few frequency bins"
);
/// Components within this angle of the peak refine its direction: the Hann
/// window spreads one ridge direction over the neighbouring bins, and a
/// gently curving ridge flow over a few more; 30° keeps those and leaves
/// out a second, crossing pattern (creases).
const REFINE_HALF_ANGLE: f32 = PI / 6.0;
/// Windows whose peak holds at least this share of the band energy vote for
/// the print's ridge period; blank and textured windows spread their energy.
const PERIOD_MIN_SHARE: f32 = 0.1;

/// Direction across the ridges (the wave vector's, as a doubled-angle unit
/// vector scaled by the peak's share of the band energy) on a grid of
/// window centres, interpolated bilinearly in between, and the print's
/// typical ridge period.
pub(crate) struct SpectralField {
    /// Full-resolution distance between window centres.
    step: usize,
    /// `share · cos 2φ` and `share · sin 2φ` per window.
    cos2: Plane<f32>,
    sin2: Plane<f32>,
    /// Median full-resolution ridge period of the windows with a clear
    /// peak; `None` when no window has one.
    pub(crate) median_period: Option<f32>,
}

impl SpectralField {
    /// Doubled-angle direction across the ridges at a full-resolution pixel,
    /// as a unit vector; `None` where the four nearest windows are blank or
    /// their directions cancel. Any texture gives a direction, ridges or not:
    /// the orientation stage weighs it by the pixel's gradient energy.
    pub(crate) fn direction_at(&self, x: usize, y: usize) -> Option<(f32, f32)> {
        // Window (bx, by) is centred on full-resolution pixel step·b + step/2.
        let half = self.step as f32 / 2.0;
        let fx = (x as f32 - half) / self.step as f32;
        let fy = (y as f32 - half) / self.step as f32;
        let (c, s) = (bilinear(&self.cos2, fx, fy), bilinear(&self.sin2, fx, fy));
        let norm = (c * c + s * s).sqrt();
        (norm > 1e-12).then(|| (c / norm, s / norm))
    }
}

/// One Hann-windowed DFT per window, evaluated only on the half-plane of
/// the ridge-frequency annulus.
pub(crate) fn spectral_field(norm: &Plane<f32>) -> SpectralField {
    let half = downsample(norm);
    let n = SPECTRAL_WINDOW / DOWNSAMPLE;
    let step = SPECTRAL_WINDOW / 2;
    let cols = norm.width.div_ceil(step).max(1);
    let rows = norm.height.div_ceil(step).max(1);
    // Frequency radii (cycles per window, half resolution) of the band.
    let r_min = n as f32 / (SPECTRAL_MAX_PERIOD / DOWNSAMPLE as f32);
    let r_max = n as f32 / (SPECTRAL_MIN_PERIOD / DOWNSAMPLE as f32);
    let k = (r_max.floor() as usize).min(n / 2 - 1);
    let bins: Vec<(i32, usize, f32)> = (-(k as i32)..=k as i32)
        .flat_map(|u| (0..=k).map(move |v| (u, v)))
        // One of each ± pair: the spectrum of a real window is symmetric.
        .filter(|&(u, v)| v > 0 || u > 0)
        .filter(|&(u, v)| {
            let r = ((u * u) as f32 + (v * v) as f32).sqrt();
            (r_min..=r_max).contains(&r)
        })
        .map(|(u, v)| (u, v, (v as f32).atan2(u as f32)))
        .collect();
    let hann: Vec<f32> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * PI * (i as f32 + 0.5) / n as f32).cos())
        .collect();
    let twiddle: Vec<(f32, f32)> = (0..n)
        .map(|i| {
            let a = -2.0 * PI * i as f32 / n as f32;
            (a.cos(), a.sin())
        })
        .collect();
    let mut window = vec![0f32; n * n];
    // Row transforms for u = 0..=k; negative u are their conjugates.
    let mut row_dft = vec![(0f32, 0f32); n * (k + 1)];
    let mut energies = vec![0f32; bins.len()];
    let mut cos2 = Plane::<f32>::new(cols, rows);
    let mut sin2 = Plane::<f32>::new(cols, rows);
    let mut periods = Vec::with_capacity(cols * rows);
    for by in 0..rows {
        for bx in 0..cols {
            let cx = ((bx * step + step / 2) / DOWNSAMPLE) as isize;
            let cy = ((by * step + step / 2) / DOWNSAMPLE) as isize;
            let mut signal = 0f32;
            for j in 0..n {
                for i in 0..n {
                    let v = half
                        .get(
                            cx - (n / 2) as isize + i as isize,
                            cy - (n / 2) as isize + j as isize,
                        )
                        .unwrap_or(0.0);
                    window[j * n + i] = v * hann[i] * hann[j];
                    signal += v.abs();
                }
            }
            if signal == 0.0 {
                continue;
            }
            for j in 0..n {
                let line = &window[j * n..(j + 1) * n];
                for u in 0..=k {
                    let (mut re, mut im) = (0f32, 0f32);
                    for (i, &x) in line.iter().enumerate() {
                        let (c, s) = twiddle[(u * i) % n];
                        re += x * c;
                        im += x * s;
                    }
                    row_dft[j * (k + 1) + u] = (re, im);
                }
            }
            let (mut total, mut peak) = (0f32, 0usize);
            for (b, &(u, v, _)) in bins.iter().enumerate() {
                let (mut re, mut im) = (0f32, 0f32);
                for j in 0..n {
                    let (rr, ri) = row_dft[j * (k + 1) + u.unsigned_abs() as usize];
                    let ri = if u < 0 { -ri } else { ri };
                    let (c, s) = twiddle[(v * j) % n];
                    re += rr * c - ri * s;
                    im += rr * s + ri * c;
                }
                let e = re * re + im * im;
                energies[b] = e;
                total += e;
                if e > energies[peak] {
                    peak = b;
                }
            }
            if total <= 0.0 {
                continue;
            }
            let peak_angle = bins[peak].2;
            let (mut c, mut s) = (0f32, 0f32);
            for (&(_, _, a), &e) in bins.iter().zip(&energies) {
                if (2.0 * (a - peak_angle)).cos() > (2.0 * REFINE_HALF_ANGLE).cos() {
                    c += e * (2.0 * a).cos();
                    s += e * (2.0 * a).sin();
                }
            }
            let share = energies[peak] / total;
            if share >= PERIOD_MIN_SHARE {
                let (u, v, _) = bins[peak];
                let radius = ((u * u) as f32 + (v * v) as f32).sqrt();
                periods.push(SPECTRAL_WINDOW as f32 / radius);
            }
            let phi2 = s.atan2(c);
            cos2.set(bx, by, share * phi2.cos());
            sin2.set(bx, by, share * phi2.sin());
        }
    }
    periods.sort_by(f32::total_cmp);
    SpectralField {
        step,
        cos2,
        sin2,
        median_period: periods.get(periods.len() / 2).copied(),
    }
}

/// 2×2 box average.
fn downsample(src: &Plane<f32>) -> Plane<f32> {
    let (w, h) = (src.width / DOWNSAMPLE, src.height / DOWNSAMPLE);
    let mut out = Plane::<f32>::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = (x * DOWNSAMPLE, y * DOWNSAMPLE);
            out.data[y * w + x] = 0.25
                * (src.at(sx, sy)
                    + src.at(sx + 1, sy)
                    + src.at(sx, sy + 1)
                    + src.at(sx + 1, sy + 1));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parallel ridges of the given period whose normal is at `normal`
    /// radians, buried in uniform pixel noise of `noise` times their
    /// amplitude (a fixed linear congruential sequence).
    pub(crate) fn grating(w: usize, h: usize, period: f32, normal: f32, noise: f32) -> Plane<f32> {
        let mut p = Plane::<f32>::new(w, h);
        let (c, s) = (normal.cos(), normal.sin());
        let mut state = 12345u32;
        for y in 0..h {
            for x in 0..w {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let uniform = (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
                let across = x as f32 * c + y as f32 * s;
                p.data[y * w + x] = (2.0 * PI * across / period).cos() + noise * uniform;
            }
        }
        p
    }

    fn angle_error_degrees(field: &SpectralField, x: usize, y: usize, normal: f32) -> f32 {
        let (c, s) = field.direction_at(x, y).expect("ridges everywhere");
        let found = 0.5 * s.atan2(c);
        let mut d = (found - normal).rem_euclid(PI);
        if d > PI / 2.0 {
            d = PI - d;
        }
        d.to_degrees()
    }

    #[test]
    fn finds_the_ridge_normal_across_the_period_band() {
        for &period in &[5.0f32, 8.0, 12.0, 15.0] {
            for deg in [0.0f32, 20.0, 45.0, 70.0, 95.0, 135.0, 170.0] {
                let normal = deg.to_radians();
                let field = spectral_field(&grating(256, 256, period, normal, 0.0));
                for &(x, y) in &[(128, 128), (70, 190), (200, 60)] {
                    let err = angle_error_degrees(&field, x, y, normal);
                    assert!(err < 4.0, "period {period} at {deg}°: off by {err:.1}°");
                }
            }
        }
    }

    #[test]
    fn ridges_under_strong_noise_keep_their_direction() {
        // Pixel noise three times the ridge amplitude: the gradient of each
        // pixel points anywhere, the ridge frequency still stands out.
        let normal = 30f32.to_radians();
        let field = spectral_field(&grating(256, 256, 9.0, normal, 3.0));
        for &(x, y) in &[(128, 128), (70, 190), (200, 60)] {
            let err = angle_error_degrees(&field, x, y, normal);
            assert!(err < 6.0, "off by {err:.1}°");
        }
    }

    #[test]
    fn two_regions_of_a_non_square_print_keep_their_own_directions() {
        // Left half at 20°, right half at 110°, 320 × 192: a swapped row and
        // column index or a misplaced window centre would mix them up.
        let (w, h) = (320, 192);
        let left = grating(w, h, 9.0, 20f32.to_radians(), 0.0);
        let right = grating(w, h, 9.0, 110f32.to_radians(), 0.0);
        let mut p = Plane::<f32>::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let src = if x < w / 2 { &left } else { &right };
                p.data[y * w + x] = src.at(x, y);
            }
        }
        let field = spectral_field(&p);
        for &(x, y, deg) in &[
            (48, 48, 20f32),
            (80, 150, 20.0),
            (240, 48, 110.0),
            (280, 150, 110.0),
        ] {
            let err = angle_error_degrees(&field, x, y, deg.to_radians());
            assert!(err < 6.0, "({x}, {y}) off by {err:.1}°");
        }
    }

    #[test]
    fn small_and_odd_sizes_answer_at_every_corner() {
        for &(w, h) in &[(64, 64), (65, 97), (97, 65)] {
            let normal = 60f32.to_radians();
            let field = spectral_field(&grating(w, h, 8.0, normal, 0.0));
            for &(x, y) in &[
                (0, 0),
                (w - 1, 0),
                (0, h - 1),
                (w - 1, h - 1),
                (w / 2, h / 2),
            ] {
                let err = angle_error_degrees(&field, x, y, normal);
                assert!(err < 8.0, "{w}x{h} at ({x}, {y}): off by {err:.1}°");
            }
        }
    }

    #[test]
    fn median_period_follows_the_ridges() {
        for &period in &[6.0f32, 9.0, 12.0, 15.0] {
            let field = spectral_field(&grating(256, 256, period, 0.6, 0.5));
            let found = field.median_period.expect("ridges everywhere");
            assert!(
                (found - period).abs() <= 0.15 * period,
                "period {period}: found {found:.2}"
            );
        }
        assert!(spectral_field(&Plane::<f32>::new(128, 128))
            .median_period
            .is_none());
    }

    #[test]
    fn blank_windows_give_no_direction() {
        let field = spectral_field(&Plane::<f32>::new(128, 128));
        assert!(field.direction_at(64, 64).is_none());
    }
}
