//! Stage 4: ridge period (wavelength) estimation.

use super::orientation::OrientationField;
use super::plane::{bilinear, Plane};
use crate::params::*;
use std::f32::consts::PI;

/// Median ridge period over the foreground, from x-signatures: grey levels
/// summed along the ridge in an oriented window and sampled across it,
/// whose dominant frequency is the ridge frequency. One value per print, as in Hong, Wan
/// and Jain's filter bank: per-block periods are noisy and the Gabor
/// bandwidth tolerates the ~20% variation within a finger.
pub(crate) fn ridge_period(norm: &Plane<f32>, mask: &Plane<bool>, field: &OrientationField) -> f32 {
    let (w, h) = (norm.width, norm.height);
    let mut periods = Vec::new();
    let n = (2 * FREQ_HALF_LEN + 1) as usize;
    let mut sig = vec![0f32; n];
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
fn signature_period(sig: &[f32]) -> Option<f32> {
    let n = sig.len();
    let centre = (n as f32 - 1.0) / 2.0;
    let mean = sig.iter().sum::<f32>() / n as f32;
    let windowed: Vec<f32> = sig
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let t = (i as f32 - centre) / (centre + 1.0);
            (v - mean) * (0.5 + 0.5 * (PI * t).cos())
        })
        .collect();
    if windowed.iter().all(|v| v.abs() <= f32::EPSILON) {
        return None;
    }
    let steps = ((MAX_WAVELENGTH - MIN_WAVELENGTH) / FREQ_PERIOD_STEP).round() as usize;
    (0..=steps)
        .map(|k| {
            let period = MIN_WAVELENGTH + k as f32 * FREQ_PERIOD_STEP;
            let omega = 2.0 * PI / period;
            let (re, im) = windowed
                .iter()
                .enumerate()
                .fold((0f32, 0f32), |(re, im), (i, v)| {
                    let (s, c) = (omega * (i as f32 - centre)).sin_cos();
                    (re + v * c, im + v * s)
                });
            (re * re + im * im, period)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, period)| period)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ridge profile (cosine at the true period) with pores: narrow dips
    /// on every ridge, which add local maxima but little energy.
    fn pored_signature(period: f32) -> Vec<f32> {
        let n = (2 * FREQ_HALF_LEN + 1) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 - FREQ_HALF_LEN as f32;
                let ridge = (2.0 * PI * t / period).cos();
                let pore = if (t / period).fract().abs() < 0.05 {
                    -0.6
                } else {
                    0.0
                };
                ridge + pore
            })
            .collect()
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
    fn a_flat_signature_has_no_period() {
        assert_eq!(signature_period(&[3.0; 33]), None);
    }
}
