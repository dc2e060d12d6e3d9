//! Stage 3: ridge orientation field from smoothed gradient tensors,
//! blended with the window spectra's estimate.

use super::plane::{box_mean, Plane};
use super::spectral::spectral_field;
use crate::params::{ORIENT_RADIUS, ORIENT_SMOOTH_RADIUS, SPECTRAL_BLEND};
use std::f32::consts::FRAC_PI_2;

/// Per-pixel ridge orientation (radians in `[0, π)`, image coordinates)
/// and coherence in `[0, 1]` (1 = perfectly parallel ridges).
pub(crate) struct OrientationField {
    pub(crate) angle: Plane<f32>,
    pub(crate) coherence: Plane<f32>,
}

/// Averages the structure tensor (gx², gy², gx·gy) — i.e. the doubled-angle
/// gradient vectors, so opposite gradients on the two flanks of a ridge
/// reinforce instead of cancelling — then smooths the doubled-angle field
/// again at a larger scale to bridge scars and creases.
pub(crate) fn orientation(norm: &Plane<f32>) -> OrientationField {
    let (w, h) = (norm.width, norm.height);
    let mut gxx = Plane::<f32>::new(w, h);
    let mut gyy = Plane::<f32>::new(w, h);
    let mut gxy = Plane::<f32>::new(w, h);
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let p = |dx: isize, dy: isize| {
                norm.data[(y as isize + dy) as usize * w + (x as isize + dx) as usize]
            };
            // Sobel.
            let gx = (p(1, -1) + 2.0 * p(1, 0) + p(1, 1)) - (p(-1, -1) + 2.0 * p(-1, 0) + p(-1, 1));
            let gy = (p(-1, 1) + 2.0 * p(0, 1) + p(1, 1)) - (p(-1, -1) + 2.0 * p(0, -1) + p(1, -1));
            let i = y * w + x;
            gxx.data[i] = gx * gx;
            gyy.data[i] = gy * gy;
            gxy.data[i] = gx * gy;
        }
    }
    let gxx = box_mean(&gxx, ORIENT_RADIUS);
    let gyy = box_mean(&gyy, ORIENT_RADIUS);
    let gxy = box_mean(&gxy, ORIENT_RADIUS);
    let mut c2 = Plane::<f32>::new(w, h);
    let mut s2 = Plane::<f32>::new(w, h);
    let mut coherence = Plane::<f32>::new(w, h);
    for i in 0..w * h {
        let (a, b, c) = (gxx.data[i], gyy.data[i], gxy.data[i]);
        c2.data[i] = a - b;
        s2.data[i] = 2.0 * c;
        let energy = a + b;
        coherence.data[i] = if energy > 1e-6 {
            ((a - b).powi(2) + 4.0 * c * c).sqrt() / energy
        } else {
            0.0
        };
    }
    // Blend in the spectral estimate with the pixel's full gradient energy,
    // so incoherent (dotted, faint) areas take their direction from it.
    let spectral = spectral_field(norm);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let energy = gxx.data[i] + gyy.data[i];
            if let Some((c, s)) = spectral.direction_at(x, y) {
                c2.data[i] = (1.0 - SPECTRAL_BLEND) * c2.data[i] + SPECTRAL_BLEND * energy * c;
                s2.data[i] = (1.0 - SPECTRAL_BLEND) * s2.data[i] + SPECTRAL_BLEND * energy * s;
            }
        }
    }
    // Two passes ≈ a triangular (nearly Gaussian) smoothing kernel.
    let c2 = box_mean(
        &box_mean(&c2, ORIENT_SMOOTH_RADIUS / 2),
        ORIENT_SMOOTH_RADIUS / 2,
    );
    let s2 = box_mean(
        &box_mean(&s2, ORIENT_SMOOTH_RADIUS / 2),
        ORIENT_SMOOTH_RADIUS / 2,
    );
    let coherence = box_mean(&coherence, ORIENT_RADIUS);
    let mut angle = Plane::<f32>::new(w, h);
    for i in 0..w * h {
        // Gradient direction is across the ridges; ridges run perpendicular.
        let grad = 0.5 * s2.data[i].atan2(c2.data[i]);
        let mut a = grad + FRAC_PI_2;
        if a >= std::f32::consts::PI {
            a -= std::f32::consts::PI;
        }
        if a < 0.0 {
            a += std::f32::consts::PI;
        }
        angle.data[i] = a;
    }
    OrientationField { angle, coherence }
}
