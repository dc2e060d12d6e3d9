//! Stage 3: ridge orientation field from smoothed gradient tensors,
//! blended with the window spectra's estimate.

use super::plane::{box_mean, Plane};
use super::spectral::spectral_field;
use crate::params::{
    ORIENT_RADIUS, ORIENT_RADIUS_MAX, ORIENT_RADIUS_MIN, ORIENT_RADIUS_PER_PERIOD,
    ORIENT_SMOOTH_RADIUS, SPECTRAL_BLEND,
};
use std::f32::consts::FRAC_PI_2;

/// Per-pixel ridge orientation (radians in `[0, π)`, image coordinates)
/// and coherence in `[0, 1]` (1 = perfectly parallel ridges). The coherence
/// is the gradient tensor's alone, before the spectral blend: segmentation
/// and the minutia gate read it as "are the ridges clean here", which the
/// blend would overstate on dotted ridges.
pub(crate) struct OrientationField {
    pub(crate) angle: Plane<f32>,
    pub(crate) coherence: Plane<f32>,
}

/// Averages the structure tensor (gx², gy², gx·gy) — i.e. the doubled-angle
/// gradient vectors, so opposite gradients on the two flanks of a ridge
/// reinforce instead of cancelling — over a window scaled to the print's
/// ridge period, blends in the window spectra's direction, then smooths the
/// doubled-angle field again at a larger scale to bridge scars and creases.
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
    let spectral = spectral_field(norm);
    let radius = tensor_radius(spectral.median_period);
    let gxx = box_mean(&gxx, radius);
    let gyy = box_mean(&gyy, radius);
    let gxy = box_mean(&gxy, radius);
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
    // so incoherent (dotted, faint) areas take their direction from it: the
    // nominal weight is SPECTRAL_BLEND, the effective one higher where the
    // gradient tensor's own vector is short.
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

/// Radius of the structure tensor's averaging window: a fixed number of
/// ridge periods, so wide ridges (FVC2000 DB3, ~12 px) are not averaged over
/// a single flank and narrow ones (~7.5 px) not blurred across a curve.
fn tensor_radius(period: Option<f32>) -> usize {
    period.map_or(ORIENT_RADIUS, |p| {
        (ORIENT_RADIUS_PER_PERIOD * p)
            .round()
            .clamp(ORIENT_RADIUS_MIN as f32, ORIENT_RADIUS_MAX as f32) as usize
    })
}

#[cfg(test)]
mod tests {
    use super::super::spectral::tests::grating;
    use super::*;
    use std::f32::consts::PI;

    #[test]
    fn ridges_run_perpendicular_to_their_normal() {
        let (w, h) = (224, 256);
        for deg in [0f32, 30.0, 75.0, 120.0, 160.0] {
            let normal = deg.to_radians();
            let field = orientation(&grating(w, h, 9.0, normal, 0.0));
            let ridge = (normal + FRAC_PI_2).rem_euclid(PI);
            for &(x, y) in &[(112, 128), (60, 70), (170, 200)] {
                let mut d = (field.angle.at(x, y) - ridge).abs();
                if d > PI / 2.0 {
                    d = PI - d;
                }
                assert!(
                    d.to_degrees() < 3.0,
                    "{deg}° at ({x}, {y}): off by {:.1}°",
                    d.to_degrees()
                );
                assert!(field.coherence.at(x, y) > 0.9);
            }
        }
    }

    #[test]
    fn the_tensor_window_scales_with_the_ridge_period() {
        assert_eq!(tensor_radius(None), ORIENT_RADIUS);
        assert_eq!(tensor_radius(Some(9.0)), 7);
        assert_eq!(tensor_radius(Some(12.0)), 10);
        assert_eq!(tensor_radius(Some(1.0)), ORIENT_RADIUS_MIN);
        assert_eq!(tensor_radius(Some(100.0)), ORIENT_RADIUS_MAX);
    }
}
