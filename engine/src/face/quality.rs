//! Face image quality measured with every template, and the enrolment gate built on it.
//!
//! Measures (all cheap, from the detection and the aligned crop): detector score, inter-eye distance in
//! the original image, sharpness (variance of the Laplacian of the aligned grey crop), exposure (mean
//! grey level and the share of clipped pixels), and a head-pose estimate from the five landmarks.
//! The pose is a geometric estimate (nose offset from the eye–mouth midline, eye-line angle), good to
//! about ±10° near frontal: enough to refuse profiles and tilted heads, not a 3-D head-pose model.

use image::RgbImage;

use super::detect::Detection;
use super::FaceError;

/// Quality measures of one face.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct FaceQuality {
    /// Detector confidence in [0, 1].
    pub detection_score: f32,
    /// Distance between the eye centres in the original image, in pixels.
    pub inter_eye_px: f32,
    /// Variance of the Laplacian of the aligned grey crop (higher = sharper).
    pub sharpness: f32,
    /// Mean grey level of the aligned crop (0–255).
    pub brightness: f32,
    /// Share of aligned-crop pixels at ≤ 5 or ≥ 250 (under/over-exposed).
    pub clipped: f32,
    /// Head yaw estimate in degrees (0 = frontal).
    pub yaw_deg: f32,
    /// Head pitch estimate in degrees (0 = frontal).
    pub pitch_deg: f32,
    /// Head roll (eye-line angle) in degrees.
    pub roll_deg: f32,
}

impl FaceQuality {
    /// The measures a template carries.
    pub fn summary(&self) -> crate::template::QualitySummary {
        crate::template::QualitySummary {
            detection_score: self.detection_score,
            inter_eye_px: self.inter_eye_px,
            sharpness: self.sharpness,
            brightness: self.brightness,
            yaw_deg: self.yaw_deg,
            pitch_deg: self.pitch_deg,
            roll_deg: self.roll_deg,
            overall: 0.0,
        }
    }
}

/// Thresholds for accepting a face at enrolment.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualityThresholds {
    /// Minimum detector confidence.
    pub min_detection_score: f32,
    /// Minimum inter-eye distance in pixels.
    pub min_inter_eye_px: f32,
    /// Minimum sharpness (variance of Laplacian on the 112-px crop).
    pub min_sharpness: f32,
    /// Brightness window.
    pub min_brightness: f32,
    /// Brightness window.
    pub max_brightness: f32,
    /// Largest share of clipped pixels.
    pub max_clipped: f32,
    /// Largest |yaw| in degrees.
    pub max_abs_yaw_deg: f32,
    /// Largest |pitch| in degrees.
    pub max_abs_pitch_deg: f32,
    /// Largest |roll| in degrees.
    pub max_abs_roll_deg: f32,
}

impl Default for QualityThresholds {
    /// Defaults refuse clear failures (profiles, heavy blur, black or burnt-out frames, faces under
    /// 24 px between the eyes) while accepting ordinary webcam, CCTV-still and ID-card photos.
    fn default() -> Self {
        QualityThresholds {
            min_detection_score: 0.7,
            min_inter_eye_px: 24.0,
            min_sharpness: 15.0,
            min_brightness: 35.0,
            max_brightness: 225.0,
            max_clipped: 0.35,
            max_abs_yaw_deg: 40.0,
            max_abs_pitch_deg: 35.0,
            max_abs_roll_deg: 35.0,
        }
    }
}

impl QualityThresholds {
    /// Accept `q`, or say which measure failed and by how much.
    pub fn check(&self, q: &FaceQuality) -> Result<(), FaceError> {
        let fail = |measure: &'static str, value: f32, limit: f32| {
            Err(FaceError::LowQuality {
                measure,
                value,
                limit,
            })
        };
        if q.detection_score < self.min_detection_score {
            return fail(
                "detection_score",
                q.detection_score,
                self.min_detection_score,
            );
        }
        if q.inter_eye_px < self.min_inter_eye_px {
            return fail("inter_eye_px", q.inter_eye_px, self.min_inter_eye_px);
        }
        if q.sharpness < self.min_sharpness {
            return fail("sharpness", q.sharpness, self.min_sharpness);
        }
        if q.brightness < self.min_brightness {
            return fail("brightness_low", q.brightness, self.min_brightness);
        }
        if q.brightness > self.max_brightness {
            return fail("brightness_high", q.brightness, self.max_brightness);
        }
        if q.clipped > self.max_clipped {
            return fail("clipped", q.clipped, self.max_clipped);
        }
        if q.yaw_deg.abs() > self.max_abs_yaw_deg {
            return fail("yaw", q.yaw_deg, self.max_abs_yaw_deg);
        }
        if q.pitch_deg.abs() > self.max_abs_pitch_deg {
            return fail("pitch", q.pitch_deg, self.max_abs_pitch_deg);
        }
        if q.roll_deg.abs() > self.max_abs_roll_deg {
            return fail("roll", q.roll_deg, self.max_abs_roll_deg);
        }
        Ok(())
    }
}

/// Measure the quality of a detected face given its aligned crop.
pub fn measure(det: &Detection, aligned: &RgbImage) -> FaceQuality {
    let [le, re, nose, lm, rm] = det.landmarks;
    let (dx, dy) = (re[0] - le[0], re[1] - le[1]);
    let inter_eye = dx.hypot(dy);
    let roll = dy.atan2(dx);
    // Express nose and mouth in a frame where the eye line is horizontal, origin at the eye midpoint.
    let (cos, sin) = (roll.cos(), roll.sin());
    let eye_mid = [(le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0];
    let to_face = |p: [f32; 2]| {
        let (x, y) = (p[0] - eye_mid[0], p[1] - eye_mid[1]);
        [x * cos + y * sin, -x * sin + y * cos]
    };
    let n = to_face(nose);
    let mouth_mid = to_face([(lm[0] + rm[0]) / 2.0, (lm[1] + rm[1]) / 2.0]);
    let half_eye = (inter_eye / 2.0).max(1e-3);
    // Yaw: horizontal nose offset from the eye–mouth midline, as a share of half the eye distance.
    let midline_x = mouth_mid[0] / 2.0;
    let yaw = ((n[0] - midline_x) / half_eye)
        .clamp(-1.0, 1.0)
        .asin()
        .to_degrees();
    // Pitch: where the nose sits between the eye line and the mouth (0.49 on the frontal template).
    let ratio = if mouth_mid[1].abs() > 1e-3 {
        n[1] / mouth_mid[1]
    } else {
        0.49
    };
    let pitch = ((ratio - 0.494) / 0.35)
        .clamp(-1.0, 1.0)
        .asin()
        .to_degrees();
    let (sharpness, brightness, clipped) = grey_stats(aligned);
    FaceQuality {
        detection_score: det.score,
        inter_eye_px: inter_eye,
        sharpness,
        brightness,
        clipped,
        yaw_deg: yaw,
        pitch_deg: pitch,
        roll_deg: roll.to_degrees(),
    }
}

/// (variance of Laplacian, mean grey, clipped share) over the central region of the crop (the warp's
/// black border, if any, would otherwise read as sharp edges).
fn grey_stats(img: &RgbImage) -> (f32, f32, f32) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 8 || h < 8 {
        return (0.0, 0.0, 1.0);
    }
    let grey: Vec<f32> = img
        .pixels()
        .map(|p| 0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32)
        .collect();
    let (x0, x1, y0, y1) = (w / 8, w - w / 8, h / 8, h - h / 8);
    let (mut sum, mut sum2, mut n) = (0f64, 0f64, 0f64);
    let (mut g_sum, mut clipped, mut count) = (0f64, 0usize, 0usize);
    for y in y0..y1 {
        for x in x0..x1 {
            let c = grey[y * w + x];
            g_sum += c as f64;
            count += 1;
            if !(5.0..250.0).contains(&c) {
                clipped += 1;
            }
            let lap = grey[(y - 1) * w + x]
                + grey[(y + 1) * w + x]
                + grey[y * w + x - 1]
                + grey[y * w + x + 1]
                - 4.0 * c;
            sum += lap as f64;
            sum2 += (lap as f64) * (lap as f64);
            n += 1.0;
        }
    }
    let mean = sum / n;
    let var = (sum2 / n - mean * mean).max(0.0);
    (
        var as f32,
        (g_sum / count as f64) as f32,
        clipped as f32 / count as f32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::align::ARCFACE_112;
    use crate::face::detect::FaceBox;

    fn frontal(scale: f32) -> Detection {
        Detection {
            bbox: FaceBox {
                x: 0.0,
                y: 0.0,
                width: 112.0 * scale,
                height: 112.0 * scale,
            },
            landmarks: ARCFACE_112.map(|[x, y]| [x * scale, y * scale]),
            score: 0.95,
        }
    }

    #[test]
    fn frontal_template_has_near_zero_pose() {
        let crop = RgbImage::from_fn(112, 112, |x, y| {
            image::Rgb([((x * 7 + y * 13) % 256) as u8; 3])
        });
        let q = measure(&frontal(2.0), &crop);
        assert!(q.yaw_deg.abs() < 3.0, "yaw {}", q.yaw_deg);
        assert!(q.pitch_deg.abs() < 3.0, "pitch {}", q.pitch_deg);
        assert!(q.roll_deg.abs() < 1.0);
        assert!((q.inter_eye_px - 2.0 * 35.24).abs() < 0.1);
    }

    #[test]
    fn turned_head_has_large_yaw_and_is_refused() {
        let mut d = frontal(1.0);
        d.landmarks[2][0] += 16.0; // nose far towards one eye
        let crop = RgbImage::from_fn(112, 112, |x, y| {
            image::Rgb([((x * 7 + y * 13) % 256) as u8; 3])
        });
        let q = measure(&d, &crop);
        assert!(q.yaw_deg > 30.0, "yaw {}", q.yaw_deg);
        let t = QualityThresholds {
            max_abs_yaw_deg: 25.0,
            ..QualityThresholds::default()
        };
        assert!(matches!(
            t.check(&q),
            Err(FaceError::LowQuality { measure: "yaw", .. })
        ));
    }

    #[test]
    fn flat_and_black_crops_fail_sharpness_and_exposure() {
        let black = RgbImage::new(112, 112);
        let q = measure(&frontal(1.0), &black);
        assert_eq!(q.sharpness, 0.0);
        assert_eq!(q.clipped, 1.0);
        assert!(QualityThresholds::default().check(&q).is_err());
    }
}
