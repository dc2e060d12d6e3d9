//! Stage 5: oriented (Gabor) filtering.

use super::orientation::OrientationField;
use super::plane::Plane;
use crate::params::*;
use std::f32::consts::PI;

/// Filters each foreground pixel with the even-symmetric Gabor kernel tuned
/// to its quantised orientation and the print's ridge period: it smooths
/// along ridges (closing breaks, removing pores) and is a band-pass across
/// them (suppressing noise at other periods). Kernels are zero-mean so the
/// output's sign is the binarisation.
pub(crate) fn gabor(
    norm: &Plane<f32>,
    mask: &Plane<bool>,
    field: &OrientationField,
    period: f32,
) -> Plane<f32> {
    let (w, h) = (norm.width, norm.height);
    let sa = GABOR_SIGMA_ACROSS * period;
    let sl = GABOR_SIGMA_ALONG * period;
    let period = GABOR_PERIOD_FACTOR * period;
    let r = (GABOR_EXTENT_SIGMAS * sa.max(sl)).ceil() as usize;
    let k = 2 * r + 1;
    let bank: Vec<Vec<f32>> = (0..GABOR_ORIENTATIONS)
        .map(|o| {
            let theta = o as f32 * PI / GABOR_ORIENTATIONS as f32;
            let (c, s) = (theta.cos(), theta.sin());
            let mut kern = vec![0f32; k * k];
            for j in 0..k {
                for i in 0..k {
                    let (dx, dy) = (i as f32 - r as f32, j as f32 - r as f32);
                    let along = dx * c + dy * s;
                    let across = -dx * s + dy * c;
                    kern[j * k + i] =
                        (-0.5 * (along * along / (sl * sl) + across * across / (sa * sa))).exp()
                            * (2.0 * PI * across / period).cos();
                }
            }
            let mean = kern.iter().sum::<f32>() / kern.len() as f32;
            kern.iter_mut().for_each(|v| *v -= mean);
            kern
        })
        .collect();
    // Zero padding: the normalised image is already zero outside the mask.
    let pw = w + 2 * r;
    let mut padded = vec![0f32; pw * (h + 2 * r)];
    for y in 0..h {
        padded[(y + r) * pw + r..(y + r) * pw + r + w]
            .copy_from_slice(&norm.data[y * w..(y + 1) * w]);
    }
    let mut out = Plane::<f32>::new(w, h);
    for y in 0..h {
        for x in 0..w {
            if !mask.at(x, y) {
                continue;
            }
            let o = ((field.angle.at(x, y) / PI * GABOR_ORIENTATIONS as f32).round() as usize)
                % GABOR_ORIENTATIONS;
            let kern = &bank[o];
            let mut acc = 0f32;
            for j in 0..k {
                let row = &padded[(y + j) * pw + x..(y + j) * pw + x + k];
                let kr = &kern[j * k..(j + 1) * k];
                acc += dot(row, kr);
            }
            out.set(x, y, acc);
        }
    }
    out
}

/// Dot product with 8 independent accumulators: float addition is not
/// associative, so a plain iterator sum stays scalar; separate lanes let
/// LLVM vectorise the loop.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
