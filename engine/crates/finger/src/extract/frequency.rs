//! Stage 4: ridge period (wavelength) estimation.

use super::orientation::OrientationField;
use super::plane::{bilinear, Plane};
use crate::params::*;

/// Median ridge period over the foreground, from x-signatures: grey levels
/// summed along the ridge in an oriented window and sampled across it,
/// whose peak spacing is the period. One value per print, as in Hong, Wan
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

fn signature_period(sig: &[f32]) -> Option<f32> {
    let peaks: Vec<usize> = (1..sig.len() - 1)
        .filter(|&i| sig[i] > sig[i - 1] && sig[i] >= sig[i + 1])
        .collect();
    if peaks.len() < 2 {
        return None;
    }
    let p = (peaks[peaks.len() - 1] - peaks[0]) as f32 / (peaks.len() - 1) as f32;
    (MIN_WAVELENGTH..=MAX_WAVELENGTH).contains(&p).then_some(p)
}
