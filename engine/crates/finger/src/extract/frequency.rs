//! Stage 4: ridge period (wavelength) estimation.

use super::orientation::OrientationField;
use super::plane::{bilinear, Plane};
use crate::params::*;
use std::f32::consts::PI;

/// Samples across the ridges in one x-signature.
const SIGNATURE_LEN: usize = (2 * FREQ_HALF_LEN + 1) as usize;

/// Median ridge period over the foreground, from x-signatures: grey levels
/// summed along the ridge in an oriented window and sampled across it,
/// whose dominant frequency is the ridge frequency. One value per print,
/// as in Hong, Wan and Jain's filter bank: per-block periods are noisy and
/// the Gabor bandwidth tolerates the ~20% variation within a finger (a
/// per-window period map measured no better).
pub(crate) fn ridge_period(norm: &Plane<f32>, mask: &Plane<bool>, field: &OrientationField) -> f32 {
    let (w, h) = (norm.width, norm.height);
    let mut periods = Vec::new();
    let mut sig = [0f32; SIGNATURE_LEN];
    let margin = FREQ_HALF_LEN as usize;
    let mut y = margin;
    while y + margin < h {
        let mut x = margin;
        while x + margin < w {
            if mask.at(x, y) && field.coherence.at(x, y) > 0.4 {
                let theta = field.angle.at(x, y);
                let (along_x, along_y) = (theta.cos(), theta.sin());
                let (across_x, across_y) = (-along_y, along_x);
                for (k, s) in sig.iter_mut().enumerate() {
                    let t = k as f32 - FREQ_HALF_LEN as f32;
                    let mut acc = 0.0;
                    for l in -FREQ_HALF_WIDTH..=FREQ_HALF_WIDTH {
                        let l = l as f32;
                        acc += bilinear(
                            norm,
                            x as f32 + t * across_x + l * along_x,
                            y as f32 + t * across_y + l * along_y,
                        );
                    }
                    *s = acc;
                }
                if let Some(p) = signature_period(&sig) {
                    periods.push(p);
                }
            }
            x += FREQ_STEP;
        }
        y += FREQ_STEP;
    }
    if periods.len() < 3 {
        return DEFAULT_WAVELENGTH;
    }
    periods.sort_by(|a, b| a.total_cmp(b));
    periods[periods.len() / 2]
}

/// The period whose Fourier component is strongest in the x-signature
/// (Hann-windowed, mean removed), scanned over the plausible range in
/// [`FREQ_PERIOD_STEP`] steps. Counting local maxima, as this used to,
/// took every pore and noise wiggle for a ridge: on FVC2000 DB3 (wide
/// ridges, many pores) it measured 7–10 px where a 2-D spectrum finds
/// 11–14, and the Gabor bank then drew ridges that are not there.
/// `None` for a flat or non-finite signature, and when the strongest
/// component is at either end of the scan: the true period is then outside
/// the plausible range (or the window is noise), and the window should not
/// vote.
fn signature_period(sig: &[f32; SIGNATURE_LEN]) -> Option<f32> {
    if sig.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let centre = FREQ_HALF_LEN as f32;
    let mean = sig.iter().sum::<f32>() / SIGNATURE_LEN as f32;
    // Flat relative to the signal's level: the mean's rounding leaves
    // residues of ~1e-7 × |mean| that are not ridges.
    let spread = sig.iter().map(|v| (v - mean).abs()).fold(0f32, f32::max);
    if spread <= 1e-5 * mean.abs().max(1.0) {
        return None;
    }
    let windowed: Vec<f32> = sig
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let t = (i as f32 - centre) / (centre + 1.0);
            (v - mean) * (0.5 + 0.5 * (PI * t).cos())
        })
        .collect();
    let table = fourier_table();
    let steps = table.len() / SIGNATURE_LEN - 1;
    let (best, _) = table
        .chunks_exact(SIGNATURE_LEN)
        .map(|row| {
            let (re, im) = row
                .iter()
                .zip(&windowed)
                .fold((0f32, 0f32), |(re, im), (&(s, c), v)| {
                    (re + v * c, im + v * s)
                });
            re * re + im * im
        })
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (best != 0 && best != steps).then_some(MIN_WAVELENGTH + best as f32 * FREQ_PERIOD_STEP)
}

/// `(sin, cos)` of every scanned period's phase at every signature sample,
/// one row per period: the same for every window, so built once.
fn fourier_table() -> &'static [(f32, f32)] {
    static TABLE: std::sync::OnceLock<Vec<(f32, f32)>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let steps = ((MAX_WAVELENGTH - MIN_WAVELENGTH) / FREQ_PERIOD_STEP).round() as usize;
        (0..=steps)
            .flat_map(|k| {
                let omega = 2.0 * PI / (MIN_WAVELENGTH + k as f32 * FREQ_PERIOD_STEP);
                (0..SIGNATURE_LEN)
                    .map(move |i| (omega * (i as f32 - FREQ_HALF_LEN as f32)).sin_cos())
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ridge profile (cosine at the true period) with pores: narrow dips
    /// on every ridge, which add local maxima but little energy.
    fn pored_signature(period: f32) -> [f32; SIGNATURE_LEN] {
        std::array::from_fn(|i| {
            let t = i as f32 - FREQ_HALF_LEN as f32;
            let ridge = (2.0 * PI * t / period).cos();
            let pore = if (t / period).fract().abs() < 0.05 {
                -0.6
            } else {
                0.0
            };
            ridge + pore
        })
    }

    #[test]
    fn the_period_of_a_pored_ridge_pattern_is_its_ridge_period() {
        for period in [6.0f32, 9.0, 12.0, 14.0] {
            let found = signature_period(&pored_signature(period)).expect("a period");
            assert!(
                (found - period).abs() <= 0.5,
                "true {period}, found {found}"
            );
        }
    }

    #[test]
    fn a_flat_or_broken_signature_has_no_period() {
        for level in [0.0f32, 3.0, 1.3, 100.1, -2_000.7] {
            assert_eq!(
                signature_period(&[level; SIGNATURE_LEN]),
                None,
                "level {level}"
            );
        }
        let mut spike = [100.0f32; SIGNATURE_LEN];
        spike[7] += 1e-4; // survives in f32, under the 1e-5 relative cut-off
        assert_eq!(signature_period(&spike), None);
        let mut nan = pored_signature(9.0);
        nan[3] = f32::NAN;
        assert_eq!(signature_period(&nan), None);
    }

    #[test]
    fn a_period_outside_the_plausible_range_does_not_vote() {
        for period in [3.0f32, 4.0, 20.0, 40.0] {
            let sig: [f32; SIGNATURE_LEN] = std::array::from_fn(|i| {
                (2.0 * PI * (i as f32 - FREQ_HALF_LEN as f32) / period).cos()
            });
            assert_eq!(signature_period(&sig), None, "true period {period}");
        }
    }
}
