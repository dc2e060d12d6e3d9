//! Stage 2: local contrast normalisation.

use super::plane::{box_mean, Plane};
use crate::params::NORM_RADIUS;

/// `(I - local mean) / local std`, zero outside the mask. Local rather than
/// global because pressure and moisture change contrast within one print;
/// the Gabor stage then sees ridges of equal amplitude everywhere.
pub(crate) fn normalize(img: &Plane<f32>, mask: &Plane<bool>) -> Plane<f32> {
    let mean = box_mean(img, NORM_RADIUS);
    let sq = Plane {
        width: img.width,
        height: img.height,
        data: img.data.iter().map(|v| v * v).collect(),
    };
    let mean_sq = box_mean(&sq, NORM_RADIUS);
    let mut out = Plane::<f32>::new(img.width, img.height);
    for i in 0..img.data.len() {
        if mask.data[i] {
            let sd = (mean_sq.data[i] - mean.data[i] * mean.data[i])
                .max(0.0)
                .sqrt();
            // The +4 floor keeps flat patches from being amplified into noise.
            out.data[i] = (img.data[i] - mean.data[i]) / (sd + 4.0);
        }
    }
    out
}
