//! Stage 6: binarisation and blob clean-up.

use super::plane::Plane;
use super::segmentation::label;
use crate::params::MIN_BLOB_AREA;

/// Ridge = negative filter response (ridges are dark, and the zero-mean
/// kernel keeps their sign) inside the mask. Ridge islands and valley holes
/// (pores) smaller than [`MIN_BLOB_AREA`] are flipped, because each would
/// otherwise thin into a pair of false endings or a loop of bifurcations.
pub(crate) fn binarize(filtered: &Plane<f32>, mask: &Plane<bool>) -> Plane<bool> {
    let mut ridges = Plane::<bool>::new(filtered.width, filtered.height);
    for i in 0..ridges.data.len() {
        ridges.data[i] = mask.data[i] && filtered.data[i] < 0.0;
    }
    for value in [true, false] {
        let (labels, sizes) = label(&ridges, value);
        for ((r, &l), &m) in ridges.data.iter_mut().zip(&labels).zip(&mask.data) {
            if l > 0 && sizes[l as usize - 1] < MIN_BLOB_AREA && m {
                *r = !value;
            }
        }
    }
    ridges
}
