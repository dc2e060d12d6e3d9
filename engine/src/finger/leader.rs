//! The LEADER minutiae extractor (ONNX): a full-resolution network that outputs, per pixel, a minutia
//! heat-map, a direction, a type and a non-maximum-suppressed quality.
//!
//! Contract (manifest row `leader`, `params dpi=500;align=32;quality=0.55`), as in pyfing's
//! `Leader.run`: the image at 500 dpi, grey levels 0..255 as f32, NHWC `[1, H, W, 1]`, padded centred to
//! multiples of 32 with the value of the top-left pixel (pyfing's `cv.copyMakeBorder(..., value =
//! image[0,0])`). Output `head_conc` `[1, H, W, 4]`: position, direction, type (≥ 0.5 ending), NMS-ed
//! quality; a minutia is a pixel whose quality is ≥ the threshold.
//!
//! Directions: LEADER's angle `d` is counter-clockwise with y up (pyfing draws `(x + cos d, y − sin d)`)
//! and points the other way from ours along the ridge. Our [`Minutia`] angle is `atan2(dy, dx)` in image
//! coordinates (clockwise on screen), from the ridge towards the free end of an ending and along the stem
//! of a bifurcation, so ours = `π − d`. Measured, not assumed: with `−d` alone all 23 minutiae of FVC2002
//! DB1_B 101_1 that pair (≤ 8 px) with the classical extractor's differed by ≈180°, and LEADER's endings
//! pointed into their own ridge (tests `directions_agree_with_classical`,
//! `endings_point_to_the_free_end_and_bifurcations_along_the_stem`).
//!
//! Before the network runs, the image passes the same gates as the classical extractor
//! ([`sinhtrac_finger::prepare`]: size, contrast, foreground), so both refuse the same images with the
//! same typed errors; fewer than [`MIN_MINUTIAE`] detections is `TooFewMinutiae`.

use std::f32::consts::{PI, TAU};

use sinhtrac_finger::params::{MAX_MINUTIAE, MIN_MINUTIAE, TARGET_DPI};
use sinhtrac_finger::{
    finish_template, prepare, Extractor, FingerError, FingerTemplate, ImageView, Minutia,
    MinutiaKind,
};

use crate::runtime::{output, Manifest, ModelEntry, ModelError, ModelSession, RuntimeConfig};

/// Manifest id of the LEADER model.
pub const MODEL_ID: &str = "leader";
/// Output tensor holding the four maps.
const OUTPUT: &str = "head_conc";
/// Type channel at or above this is an ending (pyfing's `type_threshold`).
const TYPE_THRESHOLD: f32 = 0.5;
/// Bump when pre- or post-processing changes in a way the manifest row does not show: cached templates
/// of older revisions then miss.
pub const REVISION: u32 = 1;

/// The LEADER extractor: a verified model session plus the decoding parameters from its manifest row.
pub struct LeaderExtractor {
    model: ModelSession,
    align: usize,
    quality: f32,
}

impl std::fmt::Debug for LeaderExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderExtractor")
            .field("model", &self.model.entry().id)
            .field("align", &self.align)
            .field("quality", &self.quality)
            .finish()
    }
}

impl LeaderExtractor {
    /// Loads the `leader` row of the embedded manifest (model file checked against its sha256).
    pub fn load_default(config: &RuntimeConfig) -> Result<Self, ModelError> {
        Self::load(Manifest::embedded().get(MODEL_ID)?, config)
    }

    /// Loads the model described by `entry` (role `minutiae`, `dpi=500`, `align`, `quality` params).
    pub fn load(entry: &ModelEntry, config: &RuntimeConfig) -> Result<Self, ModelError> {
        let dpi = entry.param_f32("dpi", f32::from(TARGET_DPI))?;
        if dpi != f32::from(TARGET_DPI) {
            return Err(ModelError::Manifest(format!(
                "{}: dpi={dpi}, but fingerprints are prepared at {TARGET_DPI} dpi",
                entry.id
            )));
        }
        let align = entry.param_f32("align", 32.0)?;
        if !(1.0..=1024.0).contains(&align) || align.fract() != 0.0 {
            return Err(ModelError::Manifest(format!(
                "{}: align={align} is not a whole number in 1..=1024",
                entry.id
            )));
        }
        let quality = entry.param_f32("quality", 0.55)?;
        if !(0.0..=1.0).contains(&quality) {
            return Err(ModelError::Manifest(format!(
                "{}: quality={quality} outside 0..=1",
                entry.id
            )));
        }
        let model = ModelSession::load(entry, config)?;
        Ok(LeaderExtractor {
            model,
            align: align as usize,
            quality,
        })
    }

    /// The detection threshold on the quality channel (the manifest's `quality`).
    pub fn quality_threshold(&self) -> f32 {
        self.quality
    }

    /// Uses another detection threshold (clamped to `0..=1`).
    pub fn with_quality_threshold(mut self, quality: f32) -> Self {
        self.quality = quality.clamp(0.0, 1.0);
        self
    }

    /// The manifest row.
    pub fn entry(&self) -> &ModelEntry {
        self.model.entry()
    }

    /// Everything besides the model file and the image that changes a template: for cache keys.
    pub fn cache_tag(&self) -> String {
        format!(
            "leader;rev={REVISION};align={};quality={};type={TYPE_THRESHOLD};max={MAX_MINUTIAE};min={MIN_MINUTIAE}",
            self.align, self.quality
        )
    }

    fn model_error(message: impl std::fmt::Display) -> FingerError {
        FingerError::Model {
            extractor: "leader",
            message: message.to_string(),
        }
    }
}

/// Where an image sits inside its padded tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Padding {
    width: usize,
    height: usize,
    left: usize,
    top: usize,
}

impl Padding {
    /// Centred padding of a `w`×`h` image to multiples of `align` (pyfing: the odd pixel goes right/bottom).
    fn new(w: usize, h: usize, align: usize) -> Self {
        let (pw, ph) = (w.div_ceil(align) * align, h.div_ceil(align) * align);
        Padding {
            width: pw,
            height: ph,
            left: (pw - w) / 2,
            top: (ph - h) / 2,
        }
    }
}

/// The padded input tensor (row-major `H×W`, one channel), border = `pixels[0]`.
fn pad(pixels: &[f32], w: usize, h: usize, p: Padding) -> Vec<f32> {
    let border = pixels.first().copied().unwrap_or(255.0);
    let mut out = vec![border; p.width * p.height];
    for (y, row) in pixels.chunks_exact(w).take(h).enumerate() {
        let start = (y + p.top) * p.width + p.left;
        out[start..start + w].copy_from_slice(row);
    }
    out
}

/// LEADER's direction (counter-clockwise, y up, opposite sense) in our convention (`atan2(dy, dx)`, y
/// down): `π − d`.
fn to_our_angle(leader: f32) -> f32 {
    let a = (PI - leader).rem_euclid(TAU);
    // rem_euclid can round up to exactly TAU for tiny negative inputs.
    if a >= TAU {
        0.0
    } else {
        a
    }
}

/// Decodes `head_conc` (`[1, ph, pw, 4]`) into minutiae of the `w`×`h` image at `p`: quality ≥
/// `threshold`, padding dropped, best quality first, at most [`MAX_MINUTIAE`].
fn decode(maps: &[f32], w: usize, h: usize, p: Padding, threshold: f32) -> Vec<Minutia> {
    let mut found: Vec<(f32, Minutia)> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = ((y + p.top) * p.width + (x + p.left)) * 4;
            let Some(&[_, dir, typ, q]) = maps.get(i..i + 4) else {
                continue;
            };
            // NaN quality fails the comparison: not a minutia.
            if q.is_nan() || q < threshold || !dir.is_finite() {
                continue;
            }
            let kind = if typ >= TYPE_THRESHOLD {
                MinutiaKind::Ending
            } else {
                MinutiaKind::Bifurcation
            };
            found.push((
                q,
                Minutia {
                    x: x as u16,
                    y: y as u16,
                    angle: to_our_angle(dir),
                    kind,
                    quality: (q * 100.0).round().clamp(1.0, 100.0) as u8,
                },
            ));
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    found.truncate(MAX_MINUTIAE);
    found.into_iter().map(|(_, m)| m).collect()
}

impl Extractor for LeaderExtractor {
    fn extract(&self, image: &ImageView<'_>) -> sinhtrac_finger::Result<FingerTemplate> {
        let prepared = prepare(image)?;
        let (w, h) = (prepared.width as usize, prepared.height as usize);
        let p = Padding::new(w, h, self.align);
        let input = pad(&prepared.pixels, w, h, p);
        let outs = self
            .model
            .run_f32(&[1, p.height, p.width, 1], &input)
            .map_err(Self::model_error)?;
        let maps = output(&outs, &self.entry().id, OUTPUT).map_err(Self::model_error)?;
        let expected = [1, p.height as i64, p.width as i64, 4];
        if maps.shape != expected || maps.data.len() != p.width * p.height * 4 {
            return Err(Self::model_error(format!(
                "output {OUTPUT} has shape {:?}, expected {expected:?}",
                maps.shape
            )));
        }
        let minutiae = decode(&maps.data, w, h, p, self.quality);
        tracing::debug!(
            width = w,
            height = h,
            foreground = prepared.foreground_fraction,
            minutiae = minutiae.len(),
            "leader extraction"
        );
        finish_template(prepared.width, prepared.height, minutiae)
    }

    fn name(&self) -> &'static str {
        "leader"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::FRAC_PI_2;

    #[test]
    fn padding_is_centred_to_multiples() {
        let p = Padding::new(388, 374, 32);
        assert_eq!((p.width, p.height, p.left, p.top), (416, 384, 14, 5));
        let p = Padding::new(256, 256, 32);
        assert_eq!((p.width, p.height, p.left, p.top), (256, 256, 0, 0));
        let p = Padding::new(241, 1, 32);
        assert_eq!((p.width, p.left), (256, 7));
    }

    #[test]
    fn pad_copies_rows_and_fills_with_the_corner() {
        let px: Vec<f32> = (0..6).map(|v| v as f32 + 10.0).collect(); // 3x2
        let p = Padding::new(3, 2, 4);
        let out = pad(&px, 3, 2, p);
        assert_eq!(out.len(), 16);
        // 3x2 in 4x4: left 0, top 1; the odd column goes right.
        assert_eq!(&out[4..8], &[10.0, 11.0, 12.0, 10.0]);
        assert_eq!(&out[8..12], &[13.0, 14.0, 15.0, 10.0]);
        assert!(out[..4].iter().chain(&out[12..]).all(|&v| v == 10.0));
    }

    #[test]
    fn decode_drops_padding_and_converts_angles() {
        let p = Padding::new(2, 2, 4); // left = top = 1
        let mut maps = vec![0f32; 4 * 4 * 4];
        let mut put = |x: usize, y: usize, v: [f32; 4]| {
            let i = (y * 4 + x) * 4;
            maps[i..i + 4].copy_from_slice(&v);
        };
        put(1, 1, [1.0, std::f32::consts::FRAC_PI_2, 0.9, 0.8]); // image (0,0)
        put(2, 2, [1.0, 0.0, 0.1, 0.6]); // image (1,1)
        put(0, 0, [1.0, 0.0, 0.9, 0.99]); // in the padding
        put(2, 1, [1.0, 0.0, 0.9, 0.5]); // below threshold
        let m = decode(&maps, 2, 2, p, 0.55);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].x, m[0].y, m[0].kind, m[0].quality),
            (0, 0, MinutiaKind::Ending, 80)
        );
        // π − π/2 = π/2: down on screen in our convention; π − 0 = π: left.
        assert!((m[0].angle - FRAC_PI_2).abs() < 1e-5);
        assert_eq!(
            (m[1].x, m[1].y, m[1].kind),
            (1, 1, MinutiaKind::Bifurcation)
        );
        assert!((m[1].angle - PI).abs() < 1e-5);
        assert_eq!(to_our_angle(PI), 0.0);
        assert!((to_our_angle(-FRAC_PI_2) - 1.5 * PI).abs() < 1e-5);
    }
}
