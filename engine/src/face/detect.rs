//! Face detection: YuNet (default, MIT) or SCRFD (optional; its weights are non-commercial), five
//! landmarks per face, decoded as the model manifest describes, then non-maximum suppression.
//!
//! The image is scaled so its longest side is at most `max_side` and padded on the right and bottom
//! to the model's alignment (YuNet 2026may takes any multiple of 32, so the network runs at the
//! image's own scale: work grows with pixels, not with a fixed 640×640 canvas). With `upscale=1` a
//! smaller image is enlarged until its longest side reaches `upscale_to` (default `max_side`).
//!
//! Enlarging is for the landmarks' precision, not for finding faces, so with `refine=M` an image that
//! would be enlarged by √2 or more is detected in two stages: once at its own size, then each face
//! again on a crop of M times its size enlarged by the same factor. On 250 px LFW photos that takes
//! about half the time of one 640 px pass, and moves templates from that pass's about as little as the
//! pass itself moves them between 608 and 640 px (`tests/face_pipeline.rs`). A face too small to be
//! found at the photo's own size is missed where the enlarged pass would have found it: on the first 100
//! LFW photos 121 faces against 131, all ten small background faces. A crowd (more than eight faces,
//! or crops covering more than the photo) takes the one pass.

use image::RgbImage;

use crate::image::resize_area;
use crate::runtime::{output, Colour, ModelEntry, ModelError, ModelSession, RuntimeConfig};

/// An axis-aligned face box in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FaceBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

impl FaceBox {
    /// Area in square pixels.
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    /// Intersection over union with another box.
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let x1 = self.x.max(other.x);
        let y1 = self.y.max(other.y);
        let x2 = (self.x + self.width).min(other.x + other.width);
        let y2 = (self.y + self.height).min(other.y + other.height);
        let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// One detected face.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Detection {
    /// Face box.
    pub bbox: FaceBox,
    /// Five landmarks (x, y): image-left eye, image-right eye, nose tip, image-left and image-right
    /// mouth corners (the subject's right eye first), the order of the ArcFace template.
    pub landmarks: [[f32; 2]; 5],
    /// Detector confidence in [0, 1].
    pub score: f32,
}

impl Detection {
    /// Carry the box and landmarks from coordinates scaled by `(sx, sy)` and offset by `(ox, oy)`
    /// back to the source's: `x / sx + ox` (a network input back to its image, a crop back to its
    /// photo).
    fn unmap(&mut self, (sx, sy): (f32, f32), (ox, oy): (f32, f32)) {
        let b = &mut self.bbox;
        (b.x, b.width) = (b.x / sx + ox, b.width / sx);
        (b.y, b.height) = (b.y / sy + oy, b.height / sy);
        for p in &mut self.landmarks {
            *p = [p[0] / sx + ox, p[1] / sy + oy];
        }
    }
}

enum Decoder {
    YuNet,
    Scrfd { anchors: usize },
}

/// A loaded face detector.
pub struct Detector {
    model: ModelSession,
    decoder: Decoder,
    max_side: u32,
    align: u32,
    fixed: Option<u32>,
    /// Longest side small images are enlarged to (`None`: never enlarged).
    upscale_to: Option<f32>,
    /// Detect in two stages when enlarging a lot: at the image's own size, then each face again on a
    /// crop of this many times its size, enlarged (`None`: one pass over the enlarged image).
    refine_margin: Option<f32>,
    /// Minimum score for a detection to be kept.
    pub score_threshold: f32,
    nms_iou: f32,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("model", &self.model.entry().id)
            .finish()
    }
}

const STRIDES: [usize; 3] = [8, 16, 32];

/// A window of the image that a face is re-detected on.
#[derive(Debug, Clone, Copy)]
struct Crop {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

impl Crop {
    /// The window around face box `b` that refines it in a `w` × `h` image: `margin` × the face on
    /// each axis, grown to (nearly) whole multiples of `unit` source pixels (one alignment unit once
    /// enlarged) so the network sees image where it would otherwise see padding, and moved inside
    /// the image where it would cross an edge. `None` for a box that is empty, not a number, or
    /// wholly outside the image.
    fn around(b: &FaceBox, (w, h): (u32, u32), margin: f32, unit: f32) -> Option<Crop> {
        let overlaps =
            b.x < w as f32 && b.y < h as f32 && b.x + b.width > 0.0 && b.y + b.height > 0.0;
        if !overlaps {
            return None;
        }
        let span = |side: f32, limit: u32| {
            let grown = ((margin * side / unit).ceil() * unit).floor();
            (grown.max(0.0) as u32).min(limit)
        };
        let (cw, ch) = (span(b.width, w), span(b.height, h));
        // Centred on the face, then moved back inside the image (a saturating cast maps NaN to 0).
        let start = |lo: f32, side: f32, size: u32, limit: u32| {
            ((lo + (side - size as f32) / 2.0).round().max(0.0) as u32).min(limit - size)
        };
        (cw > 0 && ch > 0).then(|| Crop {
            x: start(b.x, b.width, cw, w),
            y: start(b.y, b.height, ch, h),
            width: cw,
            height: ch,
        })
    }

    fn area(&self) -> f64 {
        f64::from(self.width) * f64::from(self.height)
    }
}

/// More faces than this in a small photo are detected in one enlarged pass: each crop is a network
/// run of its own, and a crowd's many small crops would cost more than that pass.
const MAX_REFINED_FACES: usize = 8;

/// Two stages pay when the coarse pass costs at most half the single enlarged pass.
const TWO_STAGE_MIN_SCALE: f32 = std::f32::consts::SQRT_2;

/// A crop's detection must overlap the coarse face this much to refine it.
const REFINE_MIN_IOU: f32 = 0.3;

impl Detector {
    /// Load the detector described by `entry`.
    pub fn load(entry: &ModelEntry, config: &RuntimeConfig) -> Result<Self, ModelError> {
        let decoder = if entry.output.starts_with("yunet") {
            Decoder::YuNet
        } else if entry.output.starts_with("scrfd") {
            Decoder::Scrfd {
                anchors: entry.param_f32("anchors", 2.0)? as usize,
            }
        } else {
            return Err(ModelError::Manifest(format!(
                "{}: unknown detector output '{}'",
                entry.id, entry.output
            )));
        };
        let max_side = entry.param_f32("max_side", 640.0)?;
        let upscale_to = if entry.param("upscale") == Some("1") {
            Some(entry.param_f32("upscale_to", max_side)?.min(max_side))
        } else {
            None
        };
        Ok(Detector {
            decoder,
            max_side: max_side as u32,
            align: (entry.param_f32("align", 32.0)? as u32).max(1),
            fixed: entry.param("fixed").and_then(|v| v.parse().ok()),
            upscale_to,
            refine_margin: match entry.param("refine") {
                None => None,
                Some(_) => {
                    let margin = entry.param_f32("refine", 1.0)?;
                    if !(margin.is_finite() && margin >= 1.0) {
                        return Err(ModelError::Manifest(format!(
                            "model {}: refine={margin}: the crop margin must be a finite number ≥ 1",
                            entry.id
                        )));
                    }
                    Some(margin)
                }
            },
            score_threshold: entry.param_f32("score", 0.6)?,
            nms_iou: entry.param_f32("nms_iou", 0.3)?,
            model: ModelSession::load(entry, config)?,
        })
    }

    /// Model id.
    pub fn model_id(&self) -> &str {
        &self.model.entry().id
    }

    /// The manifest row it was loaded from (id, sha256, pre-processing parameters).
    pub fn entry(&self) -> &ModelEntry {
        self.model.entry()
    }

    /// Every face above the score threshold, best first, in original image coordinates.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, ModelError> {
        let (w, h) = img.dimensions();
        let scale = self.scale_for(w, h);
        let mut found = match self.refine_margin {
            Some(margin) if self.fixed.is_none() && scale >= TWO_STAGE_MIN_SCALE => {
                let coarse = self.detect_at(img, 1.0)?;
                let unit = self.align as f32 / scale;
                let crops: Vec<Option<Crop>> = coarse
                    .iter()
                    .map(|d| Crop::around(&d.bbox, (w, h), margin, unit))
                    .collect();
                // Many faces (a crowd, or a crafted image) would cost more in crop runs or crop
                // pixels than the single enlarged pass: take that pass instead, so the worst case
                // stays ~1.5× of it plus at most MAX_REFINED_FACES small runs.
                let crop_area: f64 = crops.iter().flatten().map(Crop::area).sum();
                if crops.len() > MAX_REFINED_FACES || crop_area > f64::from(w) * f64::from(h) {
                    self.detect_at(img, scale)?
                } else {
                    let mut refined = Vec::with_capacity(coarse.len());
                    for (d, crop) in coarse.into_iter().zip(crops) {
                        refined.push(match crop {
                            Some(crop) => self.refine(img, d, crop, scale)?,
                            None => d,
                        });
                    }
                    nms(&mut refined, self.nms_iou)
                }
            }
            _ => self.detect_at(img, scale)?,
        };
        for d in &mut found {
            clip_box(&mut d.bbox, w as f32, h as f32);
        }
        Ok(found)
    }

    /// The scale a face is detected at: the image's longest side brought down to `max_side`, or up to
    /// `upscale_to` when the manifest enlarges small images. YuNet's landmarks are less precise on the
    /// ~100 px faces of a 250 px photo, so the default row enlarges to max_side (640); smaller targets
    /// are compared in the README's LFW section.
    fn scale_for(&self, w: u32, h: u32) -> f32 {
        let limit = self.fixed.unwrap_or(self.max_side) as f32;
        let longest = w.max(h) as f32;
        let fit = limit / longest;
        match self.upscale_to {
            Some(to) if fit > 1.0 => (to / longest).clamp(1.0, fit),
            _ => fit.min(1.0),
        }
    }

    /// Re-detect a face found at the image's own size on `window` enlarged by `scale`, so the face
    /// gets the pixels, and the landmarks comparable precision, of a single pass over the whole
    /// enlarged image, at a fraction of its cost. The crop's detection that overlaps the face most
    /// replaces it; a face the crop does not confirm is kept as found.
    fn refine(
        &self,
        img: &RgbImage,
        coarse: Detection,
        window: Crop,
        scale: f32,
    ) -> Result<Detection, ModelError> {
        let b = coarse.bbox;
        let crop = image::imageops::crop_imm(img, window.x, window.y, window.width, window.height)
            .to_image();
        let (ox, oy) = (window.x as f32, window.y as f32);
        let local = FaceBox {
            x: b.x - ox,
            y: b.y - oy,
            ..b
        };
        let best = self
            .detect_at(&crop, scale)?
            .into_iter()
            .map(|d| (d.bbox.iou(&local), d))
            .filter(|(iou, _)| *iou >= REFINE_MIN_IOU)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        Ok(match best {
            Some((_, mut d)) => {
                d.unmap((1.0, 1.0), (ox, oy));
                d
            }
            None => coarse,
        })
    }

    /// One pass of the network over `img` scaled by `scale`: every face above the score threshold,
    /// best first, in `img`'s coordinates (boxes not clipped to it).
    fn detect_at(&self, img: &RgbImage, scale: f32) -> Result<Vec<Detection>, ModelError> {
        let (w, h) = img.dimensions();
        let (sw, sh) = (
            ((w as f32 * scale).round() as u32).max(1),
            ((h as f32 * scale).round() as u32).max(1),
        );
        let round_up = |v: u32| v.div_ceil(self.align) * self.align;
        let (pw, ph) = match self.fixed {
            Some(f) => (f, f),
            None => (round_up(sw), round_up(sh)),
        };
        let entry = self.model.entry();
        let (colour, mean, std) = (entry.colour, entry.mean, entry.std);
        let tensor = if (sw, sh) == (w, h) {
            planar_tensor(img, pw, ph, colour, mean, std)
        } else if scale < 0.5 {
            // Shrinking a lot: average boxes first, so small faces do not alias away.
            planar_tensor(&resize_area(img, sw, sh), pw, ph, colour, mean, std)
        } else {
            // Enlarging or mild shrinking: resample straight into the tensor (one pass, no image copy).
            planar_tensor_resized(img, sw, sh, pw, ph, colour, mean, std)
        };
        let outputs = self
            .model
            .run_f32(&[1, 3, ph as usize, pw as usize], &tensor)?;
        let mut found = match self.decoder {
            Decoder::YuNet => self.decode_yunet(&outputs, pw as usize, ph as usize)?,
            Decoder::Scrfd { anchors } => {
                self.decode_scrfd(&outputs, pw as usize, ph as usize, anchors)?
            }
        };
        let mut kept = nms(&mut found, self.nms_iou);
        let (sx, sy) = (sw as f32 / w as f32, sh as f32 / h as f32);
        for d in &mut kept {
            d.unmap((sx, sy), (0.0, 0.0));
        }
        Ok(kept)
    }

    fn decode_yunet(
        &self,
        outputs: &[crate::runtime::Output],
        pw: usize,
        ph: usize,
    ) -> Result<Vec<Detection>, ModelError> {
        let id = self.model_id();
        let mut found = Vec::new();
        for s in STRIDES {
            let cls = &output(outputs, id, &format!("cls_{s}"))?.data;
            let obj = &output(outputs, id, &format!("obj_{s}"))?.data;
            let bbox = &output(outputs, id, &format!("bbox_{s}"))?.data;
            let kps = &output(outputs, id, &format!("kps_{s}"))?.data;
            let cols = pw / s;
            let anchors = cols * (ph / s);
            if cls.len() < anchors
                || obj.len() < anchors
                || bbox.len() < anchors * 4
                || kps.len() < anchors * 10
            {
                return Err(ModelError::inference(
                    id,
                    format!("stride {s}: output smaller than {anchors} anchors"),
                ));
            }
            let sf = s as f32;
            for i in 0..anchors {
                let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
                if score < self.score_threshold {
                    continue;
                }
                let (col, row) = ((i % cols) as f32, (i / cols) as f32);
                let b = &bbox[i * 4..i * 4 + 4];
                let (cx, cy) = ((col + b[0]) * sf, (row + b[1]) * sf);
                let (bw, bh) = (b[2].exp() * sf, b[3].exp() * sf);
                let k = &kps[i * 10..i * 10 + 10];
                let landmarks =
                    std::array::from_fn(|j| [(col + k[2 * j]) * sf, (row + k[2 * j + 1]) * sf]);
                found.push(Detection {
                    bbox: FaceBox {
                        x: cx - bw / 2.0,
                        y: cy - bh / 2.0,
                        width: bw,
                        height: bh,
                    },
                    landmarks,
                    score,
                });
            }
        }
        Ok(found)
    }

    fn decode_scrfd(
        &self,
        outputs: &[crate::runtime::Output],
        pw: usize,
        ph: usize,
        per_cell: usize,
    ) -> Result<Vec<Detection>, ModelError> {
        let id = self.model_id();
        if outputs.len() < 9 {
            return Err(ModelError::inference(
                id,
                format!("expected 9 outputs, got {}", outputs.len()),
            ));
        }
        let mut found = Vec::new();
        for (level, s) in STRIDES.into_iter().enumerate() {
            let (scores, bbox, kps) = (
                &outputs[level].data,
                &outputs[level + 3].data,
                &outputs[level + 6].data,
            );
            let cols = pw / s;
            let anchors = cols * (ph / s) * per_cell;
            if scores.len() < anchors || bbox.len() < anchors * 4 || kps.len() < anchors * 10 {
                return Err(ModelError::inference(
                    id,
                    format!("stride {s}: output smaller than {anchors} anchors"),
                ));
            }
            let sf = s as f32;
            for i in 0..anchors {
                let score = scores[i];
                if score < self.score_threshold {
                    continue;
                }
                let cell = i / per_cell;
                let (cx, cy) = ((cell % cols) as f32 * sf, (cell / cols) as f32 * sf);
                let b = &bbox[i * 4..i * 4 + 4];
                let (x1, y1, x2, y2) = (
                    cx - b[0] * sf,
                    cy - b[1] * sf,
                    cx + b[2] * sf,
                    cy + b[3] * sf,
                );
                let k = &kps[i * 10..i * 10 + 10];
                let landmarks =
                    std::array::from_fn(|j| [cx + k[2 * j] * sf, cy + k[2 * j + 1] * sf]);
                found.push(Detection {
                    bbox: FaceBox {
                        x: x1,
                        y: y1,
                        width: x2 - x1,
                        height: y2 - y1,
                    },
                    landmarks,
                    score,
                });
            }
        }
        Ok(found)
    }
}

/// Which RGB channel feeds each tensor plane.
fn channel_order(colour: Colour) -> [usize; 3] {
    match colour {
        Colour::Bgr => [2, 1, 0],
        _ => [0, 1, 2],
    }
}

/// Pack an RGB image into a zero-padded planar (NCHW) tensor of `pw`×`ph` in the model's colour order
/// and normalisation. Padding holds the value of a black pixel. (The resampling path at the image's own
/// size: identity taps give exactly the source values.)
pub(crate) fn planar_tensor(
    img: &RgbImage,
    pw: u32,
    ph: u32,
    colour: Colour,
    mean: f32,
    std: f32,
) -> Vec<f32> {
    planar_tensor_resized(img, img.width(), img.height(), pw, ph, colour, mean, std)
}

/// Source samples and weight of output sample `i` when `n_src` samples are resampled to `n_dst`
/// (pixel centres aligned, as OpenCV's bilinear resize): `(i0, i1, weight of i1)`.
fn bilinear_taps(n_src: usize, n_dst: u32, i: usize) -> (usize, usize, f32) {
    let f = ((i as f32 + 0.5) * n_src as f32 / n_dst as f32 - 0.5).max(0.0);
    let i0 = (f.floor() as usize).min(n_src - 1);
    (i0, (i0 + 1).min(n_src - 1), f - i0 as f32)
}

/// Bilinear resize of `img` to `sw`×`sh` (OpenCV `INTER_LINEAR` semantics) written straight into a
/// zero-padded planar tensor of `pw`×`ph`, with the model's colour order and normalisation.
#[allow(clippy::too_many_arguments)]
pub(crate) fn planar_tensor_resized(
    img: &RgbImage,
    sw: u32,
    sh: u32,
    pw: u32,
    ph: u32,
    colour: Colour,
    mean: f32,
    std: f32,
) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (ow, oh) = (sw.min(pw) as usize, sh.min(ph) as usize);
    let plane = pw as usize * ph as usize;
    let inv = 1.0 / std;
    let mut t = vec![(0.0 - mean) * inv; 3 * plane];
    if w == 0 || h == 0 {
        return t;
    }
    let order = channel_order(colour);
    let cols: Vec<(usize, usize, f32)> = (0..ow).map(|x| bilinear_taps(w, sw, x)).collect();
    let raw = img.as_raw();
    let stride = w * 3;
    // Separable: each source row is interpolated along x once (an enlarged row is used by several
    // output rows), then output rows are straight-line blends of two such rows. Same arithmetic in the
    // same order as interpolating each output pixel from its four neighbours, so the tensor is
    // bit-identical; 12% of `bench face` was the per-pixel form.
    let along_x = |src_y: usize, out: &mut [f32]| {
        let row = &raw[src_y * stride..][..stride];
        for (out_c, &src_c) in out.chunks_exact_mut(ow).zip(&order) {
            for (d, &(x0, x1, wx)) in out_c.iter_mut().zip(&cols) {
                let (a, b) = (row[x0 * 3 + src_c] as f32, row[x1 * 3 + src_c] as f32);
                *d = a + (b - a) * wx;
            }
        }
    };
    let (mut upper, mut lower) = (
        (usize::MAX, vec![0f32; 3 * ow]),
        (usize::MAX, vec![0f32; 3 * ow]),
    );
    for y in 0..oh {
        let (y0, y1, wy) = bilinear_taps(h, sh, y);
        if upper.0 != y0 {
            if lower.0 == y0 {
                std::mem::swap(&mut upper, &mut lower);
            } else {
                along_x(y0, &mut upper.1);
                upper.0 = y0;
            }
        }
        if lower.0 != y1 {
            along_x(y1, &mut lower.1);
            lower.0 = y1;
        }
        for (c, (top, bottom)) in upper
            .1
            .chunks_exact(ow)
            .zip(lower.1.chunks_exact(ow))
            .enumerate()
        {
            let dst = &mut t[c * plane + y * pw as usize..][..ow];
            for ((d, &tp), &bt) in dst.iter_mut().zip(top).zip(bottom) {
                *d = (tp + (bt - tp) * wy - mean) * inv;
            }
        }
    }
    t
}

fn clip_box(b: &mut FaceBox, w: f32, h: f32) {
    let x2 = (b.x + b.width).min(w);
    let y2 = (b.y + b.height).min(h);
    b.x = b.x.max(0.0);
    b.y = b.y.max(0.0);
    b.width = (x2 - b.x).max(0.0);
    b.height = (y2 - b.y).max(0.0);
}

/// Greedy non-maximum suppression: best score first, drop boxes overlapping a kept one by more than `iou`.
pub fn nms(found: &mut [Detection], iou: f32) -> Vec<Detection> {
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in found.iter() {
        if kept.iter().all(|k| k.bbox.iou(&d.bbox) <= iou) {
            kept.push(d.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, width: f32, height: f32) -> FaceBox {
        FaceBox {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn a_crop_is_centred_on_the_face_and_grown_to_whole_units() {
        // 100×120 face in a 250×250 photo, units of 12.5 px (32 px enlarged 2.56×).
        let c = Crop::around(&face(75.0, 60.0, 100.0, 120.0), (250, 250), 1.3, 12.5).unwrap();
        assert_eq!((c.width, c.height), (137, 162)); // 1.3 × 100 → 11 units, 1.3 × 120 → 13 units
        assert_eq!((c.x, c.y), (57, 39));
    }

    #[test]
    fn a_crop_crossing_an_edge_is_moved_inside_with_its_size() {
        let c = Crop::around(&face(190.0, 200.0, 60.0, 50.0), (250, 250), 1.3, 12.5).unwrap();
        assert_eq!((c.x + c.width, c.y + c.height), (250, 250));
        assert_eq!((c.width, c.height), (87, 75));
        let c = Crop::around(&face(-20.0, -10.0, 60.0, 50.0), (250, 250), 1.3, 12.5).unwrap();
        assert_eq!((c.x, c.y, c.width, c.height), (0, 0, 87, 75));
        // Larger than the photo: the whole photo.
        let c = Crop::around(&face(-50.0, -50.0, 400.0, 400.0), (250, 200), 1.3, 12.5).unwrap();
        assert_eq!((c.x, c.y, c.width, c.height), (0, 0, 250, 200));
    }

    #[test]
    fn no_crop_for_an_empty_nan_or_outside_box() {
        for b in [
            face(10.0, 10.0, 0.0, 40.0),
            face(f32::NAN, 10.0, 40.0, 40.0),
            face(10.0, 10.0, f32::NAN, 40.0),
            face(300.0, 10.0, 40.0, 40.0),
            face(10.0, -80.0, 40.0, 40.0),
        ] {
            assert!(Crop::around(&b, (250, 250), 1.3, 12.5).is_none(), "{b:?}");
        }
    }

    /// The per-pixel form [`planar_tensor_resized`] replaced: four neighbours per output value.
    fn per_pixel_reference(
        img: &RgbImage,
        (sw, sh, pw, ph): (u32, u32, u32, u32),
        colour: Colour,
        mean: f32,
        std: f32,
    ) -> Vec<f32> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (ow, oh) = (sw.min(pw) as usize, sh.min(ph) as usize);
        let plane = pw as usize * ph as usize;
        let inv = 1.0 / std;
        let mut t = vec![(0.0 - mean) * inv; 3 * plane];
        let order = channel_order(colour);
        let cols: Vec<(usize, usize, f32)> = (0..ow).map(|x| bilinear_taps(w, sw, x)).collect();
        let raw = img.as_raw();
        let stride = w * 3;
        for y in 0..oh {
            let (y0, y1, wy) = bilinear_taps(h, sh, y);
            let (r0, r1) = (&raw[y0 * stride..][..stride], &raw[y1 * stride..][..stride]);
            for (c, &src_c) in order.iter().enumerate() {
                let dst = &mut t[c * plane + y * pw as usize..][..ow];
                for (d, &(x0, x1, wx)) in dst.iter_mut().zip(&cols) {
                    let (a, b) = (r0[x0 * 3 + src_c] as f32, r0[x1 * 3 + src_c] as f32);
                    let (p, q) = (r1[x0 * 3 + src_c] as f32, r1[x1 * 3 + src_c] as f32);
                    let top = a + (b - a) * wx;
                    let bottom = p + (q - p) * wx;
                    *d = (top + (bottom - top) * wy - mean) * inv;
                }
            }
        }
        t
    }

    #[test]
    fn separable_resize_is_bit_identical_to_the_per_pixel_form() {
        let img = RgbImage::from_fn(250, 187, |x, y| {
            image::Rgb([(x * 7 + y * 3) as u8, (x * y % 251) as u8, (x ^ y) as u8])
        });
        for dims in [
            (640, 479, 640, 480),
            (250, 187, 256, 192),
            (200, 150, 224, 160),
            (1000, 748, 640, 640),
            (30, 20, 32, 32),
        ] {
            for (colour, mean, std) in [(Colour::Bgr, 0.0, 1.0), (Colour::Rgb, 127.5, 128.0)] {
                let fast =
                    planar_tensor_resized(&img, dims.0, dims.1, dims.2, dims.3, colour, mean, std);
                let reference = per_pixel_reference(&img, dims, colour, mean, std);
                assert!(
                    fast.iter()
                        .zip(&reference)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{dims:?} {colour:?}"
                );
            }
        }
    }

    fn det(x: f32, score: f32) -> Detection {
        Detection {
            bbox: FaceBox {
                x,
                y: 0.0,
                width: 10.0,
                height: 10.0,
            },
            landmarks: [[0.0; 2]; 5],
            score,
        }
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = FaceBox {
            x: 0.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
        };
        let b = FaceBox {
            x: 5.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
        };
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&FaceBox { x: 20.0, ..a }), 0.0);
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_disjoint() {
        let mut v = vec![det(0.0, 0.7), det(1.0, 0.9), det(50.0, 0.8)];
        let kept = nms(&mut v, 0.3);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].bbox.x, 50.0);
    }

    #[test]
    fn fused_resize_matches_resize_then_pack() {
        let img = RgbImage::from_fn(25, 19, |x, y| {
            image::Rgb([(x * 9) as u8, (y * 13) as u8, ((x + y) * 5) as u8])
        });
        let direct = planar_tensor_resized(&img, 64, 48, 64, 64, Colour::Bgr, 0.0, 1.0);
        let two_step = planar_tensor(
            &crate::image::resize_bilinear(&img, 64, 48),
            64,
            64,
            Colour::Bgr,
            0.0,
            1.0,
        );
        // resize_bilinear rounds to u8; the fused path keeps fractions.
        assert!(direct
            .iter()
            .zip(&two_step)
            .all(|(a, b)| (a - b).abs() <= 0.5 + 1e-4));
    }

    #[test]
    fn packing_at_the_source_size_copies_pixels_exactly() {
        let img = RgbImage::from_fn(7, 5, |x, y| {
            image::Rgb([(x * 30) as u8, (y * 40) as u8, 200])
        });
        let t = planar_tensor(&img, 8, 8, Colour::Rgb, 0.0, 1.0);
        for (x, y, p) in img.enumerate_pixels() {
            for c in 0..3 {
                assert_eq!(t[c * 64 + y as usize * 8 + x as usize], p.0[c] as f32);
            }
        }
    }

    #[test]
    fn planar_tensor_orders_channels_and_pads() {
        let img = RgbImage::from_pixel(2, 1, image::Rgb([10, 20, 30]));
        let t = planar_tensor(&img, 4, 2, Colour::Bgr, 0.0, 1.0);
        assert_eq!(t.len(), 3 * 8);
        assert_eq!((t[0], t[8], t[16]), (30.0, 20.0, 10.0));
        assert_eq!(t[2], 0.0); // padding
        let t = planar_tensor(&img, 2, 1, Colour::Rgb, 127.5, 128.0);
        assert!((t[0] - (10.0 - 127.5) / 128.0).abs() < 1e-6);
    }
}
