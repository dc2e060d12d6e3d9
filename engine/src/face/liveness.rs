//! Passive, single-image face liveness (presentation-attack detection).
//!
//! Models and their exact pre-processing come from the manifest:
//! - MiniFASNetV2 (crop ×2.7) and MiniFASNetV1SE (crop ×4.0): the face box enlarged about its centre,
//!   shifted to stay inside the image (`crop=clamp`), resized bilinearly to 80×80, BGR 0..255; softmax
//!   over 3 classes, class 1 = real. Upstream averages the two softmaxes: so do we.
//! - MiniFASNetV2-SE 128: a square of 1.5 × the longer box side, reflection-padded where it leaves the
//!   image (`crop=reflect`), area-resized to 128, RGB /255; logits [real, spoof].
//!
//! The score is the mean probability of "real" over the configured models, in [0, 1].

use image::RgbImage;

use super::detect::{planar_tensor, FaceBox};
use crate::image::{resize_area, resize_bilinear};
use crate::runtime::{ModelEntry, ModelError, ModelSession, RuntimeConfig};

/// One liveness model's opinion.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelScore {
    /// Model id.
    pub model: String,
    /// Probability that the face is real, in [0, 1].
    pub real: f32,
}

/// The liveness outcome for one face.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LivenessResult {
    /// Mean probability of a live face over the models, in [0, 1].
    pub score: f32,
    /// The threshold the decision was made at.
    pub threshold: f32,
    /// `score >= threshold`.
    pub live: bool,
    /// Per-model scores.
    pub models: Vec<ModelScore>,
}

#[derive(Debug, Clone, Copy)]
enum CropRule {
    Clamp { scale: f32 },
    Reflect { scale: f32 },
}

struct LivenessModel {
    session: ModelSession,
    crop: CropRule,
    size: u32,
    /// Index of the "real" class and whether outputs are 3-class (MiniFAS) or 2-class logits.
    real_class: usize,
}

/// A set of liveness models scored together.
pub struct LivenessScorer {
    models: Vec<LivenessModel>,
    /// Decision threshold on the score.
    pub threshold: f32,
}

impl std::fmt::Debug for LivenessScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self
            .models
            .iter()
            .map(|m| m.session.entry().id.as_str())
            .collect();
        f.debug_struct("LivenessScorer")
            .field("models", &ids)
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl LivenessScorer {
    /// Load the given liveness models.
    pub fn load(
        entries: &[&ModelEntry],
        threshold: f32,
        config: &RuntimeConfig,
    ) -> Result<Self, ModelError> {
        if entries.is_empty() {
            return Err(ModelError::Manifest("no liveness model selected".into()));
        }
        let mut models = Vec::new();
        for e in entries {
            let scale = e.param_f32("crop_scale", 2.7)?;
            let crop = match e.param("crop") {
                Some("reflect") => CropRule::Reflect { scale },
                _ => CropRule::Clamp { scale },
            };
            let size = e.fixed_dim(2).ok_or_else(|| {
                ModelError::Manifest(format!("{}: liveness input must have a fixed size", e.id))
            })?;
            let real_class = if e.output.contains("real=0") { 0 } else { 1 };
            models.push(LivenessModel {
                session: ModelSession::load(e, config)?,
                crop,
                size: size as u32,
                real_class,
            });
        }
        Ok(LivenessScorer { models, threshold })
    }

    /// The manifest rows of the models, in scoring order.
    pub fn entries(&self) -> Vec<&ModelEntry> {
        self.models.iter().map(|m| m.session.entry()).collect()
    }

    /// Model ids, in scoring order.
    pub fn model_ids(&self) -> Vec<String> {
        self.models
            .iter()
            .map(|m| m.session.entry().id.clone())
            .collect()
    }

    /// Score the face in `bbox` of `img`.
    pub fn score(&self, img: &RgbImage, bbox: &FaceBox) -> Result<LivenessResult, ModelError> {
        let mut scores = Vec::with_capacity(self.models.len());
        for m in &self.models {
            let entry = m.session.entry();
            let crop = match m.crop {
                CropRule::Clamp { scale } => {
                    resize_bilinear(&crop_clamped(img, bbox, scale), m.size, m.size)
                }
                CropRule::Reflect { scale } => {
                    resize_area(&crop_reflect(img, bbox, scale), m.size, m.size)
                }
            };
            let s = m.size as usize;
            let tensor = planar_tensor(&crop, m.size, m.size, entry.colour, entry.mean, entry.std);
            let outputs = m.session.run_f32(&[1, 3, s, s], &tensor)?;
            let logits = &outputs
                .first()
                .ok_or_else(|| ModelError::inference(&entry.id, "no output"))?
                .data;
            if logits.len() <= m.real_class {
                return Err(ModelError::inference(&entry.id, "too few output classes"));
            }
            let real = softmax(logits)[m.real_class];
            if !real.is_finite() {
                return Err(ModelError::inference(
                    &entry.id,
                    "non-finite liveness score",
                ));
            }
            scores.push(ModelScore {
                model: entry.id.clone(),
                real,
            });
        }
        let score = scores.iter().map(|s| s.real).sum::<f32>() / scores.len() as f32;
        Ok(LivenessResult {
            score,
            threshold: self.threshold,
            live: score >= self.threshold,
            models: scores,
        })
    }
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

/// The Silent-Face-Anti-Spoofing crop: box scaled about its centre (scale limited so it fits), then
/// shifted back inside the image; inclusive integer corners as upstream.
fn crop_clamped(img: &RgbImage, b: &FaceBox, scale: f32) -> RgbImage {
    let (sw, sh) = (img.width() as f32, img.height() as f32);
    let (bw, bh) = (b.width.max(1.0), b.height.max(1.0));
    let scale = scale.min((sh - 1.0) / bh).min((sw - 1.0) / bw);
    let (nw, nh) = (bw * scale, bh * scale);
    let (cx, cy) = (b.x + bw / 2.0, b.y + bh / 2.0);
    let (mut x1, mut y1, mut x2, mut y2) =
        (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if x1 < 0.0 {
        x2 -= x1;
        x1 = 0.0;
    }
    if y1 < 0.0 {
        y2 -= y1;
        y1 = 0.0;
    }
    if x2 > sw - 1.0 {
        x1 -= x2 - sw + 1.0;
        x2 = sw - 1.0;
    }
    if y2 > sh - 1.0 {
        y1 -= y2 - sh + 1.0;
        y2 = sh - 1.0;
    }
    let (x1, y1) = (x1.max(0.0) as u32, y1.max(0.0) as u32);
    let (x2, y2) = (x2.max(0.0) as u32, y2.max(0.0) as u32);
    let w = (x2.saturating_sub(x1) + 1).min(img.width() - x1);
    let h = (y2.saturating_sub(y1) + 1).min(img.height() - y1);
    image::imageops::crop_imm(img, x1, y1, w, h).to_image()
}

/// Mirror index into [0, n) without repeating the edge pixel (OpenCV BORDER_REFLECT_101).
fn reflect101(i: i64, n: i64) -> i64 {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    if m < n {
        m
    } else {
        period - m
    }
}

/// A square crop of `scale` × the longer box side about the box centre, reflection-padded.
fn crop_reflect(img: &RgbImage, b: &FaceBox, scale: f32) -> RgbImage {
    let side = (b.width.max(b.height) * scale).round().max(1.0) as i64;
    let (cx, cy) = (b.x + b.width / 2.0, b.y + b.height / 2.0);
    let (x0, y0) = (
        (cx - side as f32 / 2.0).round() as i64,
        (cy - side as f32 / 2.0).round() as i64,
    );
    let (w, h) = (img.width() as i64, img.height() as i64);
    RgbImage::from_fn(side as u32, side as u32, |x, y| {
        let sx = reflect101(x0 + x as i64, w) as u32;
        let sy = reflect101(y0 + y as i64, h) as u32;
        *img.get_pixel(sx, sy)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect101_mirrors_without_repeating_edges() {
        let idx: Vec<i64> = (-3..7).map(|i| reflect101(i, 4)).collect();
        assert_eq!(idx, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
    }

    #[test]
    fn clamped_crop_stays_inside_and_keeps_scale() {
        let img = RgbImage::new(640, 480);
        let near_edge = FaceBox {
            x: 10.0,
            y: 10.0,
            width: 100.0,
            height: 120.0,
        };
        let c = crop_clamped(&img, &near_edge, 2.7);
        assert_eq!(c.width(), 271); // 270 px + inclusive corner
        assert!(c.height() <= 480);
        // Scale limited by the image: 4.0 × 120 > 479.
        let c = crop_clamped(&img, &near_edge, 4.0);
        assert!(c.height() <= 480 && c.width() <= 640);
    }

    #[test]
    fn softmax_sums_to_one() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
    }
}
