//! Minutiae extraction: the [`Extractor`] interface and the classical
//! pipeline behind it.
//!
//! [`ClassicalExtractor::extract`] is one short function calling named
//! stages, one file each: `resample` → `segmentation` → `normalize` →
//! `orientation` → `frequency` → `enhance` (Gabor) → `binarize` →
//! `thinning` → `minutiae` (crossing number, direction, false-minutiae
//! removal, quality), then each minutia's ridge-flow descriptor from the
//! orientation field ([`crate::flow`]). All constants live in
//! [`crate::params`].
//!
//! Learned extractors (the engine's LEADER ONNX extractor) implement the
//! same trait and share the front of the pipeline through [`prepare`]:
//! resampling to 500 dpi and the size, contrast and foreground gates.

mod binarize;
mod enhance;
mod frequency;
mod minutiae;
mod normalize;
mod orientation;
pub(crate) mod plane;
mod resample;
mod segmentation;
mod spectral;
mod thinning;

#[cfg(test)]
pub(crate) use minutiae::angle_diff;

use crate::error::{FingerError, Result};
use crate::params::*;
use crate::template::{FingerTemplate, Minutia};

/// A borrowed 8-bit grayscale image and its resolution.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major pixels, `width * height` bytes, 0 = black.
    pub pixels: &'a [u8],
    /// Capture resolution in dots per inch.
    pub dpi: u16,
}

impl<'a> ImageView<'a> {
    /// Checked constructor: the buffer must hold exactly `width * height`
    /// bytes and the resolution must be plausible.
    pub fn new(width: u32, height: u32, pixels: &'a [u8], dpi: u16) -> Result<Self> {
        if (width as usize).checked_mul(height as usize) != Some(pixels.len()) {
            return Err(FingerError::BufferSize {
                width,
                height,
                len: pixels.len(),
            });
        }
        if !(MIN_DPI..=MAX_DPI).contains(&dpi) {
            return Err(FingerError::Resolution {
                dpi: dpi.into(),
                min: MIN_DPI,
                max: MAX_DPI,
            });
        }
        Ok(ImageView {
            width,
            height,
            pixels,
            dpi,
        })
    }
}

/// Anything that turns a fingerprint image into a minutiae template.
/// Implementations are shared between threads.
pub trait Extractor: Send + Sync {
    /// Extracts minutiae; coordinates are at 500 dpi in the returned
    /// template whatever the input resolution.
    fn extract(&self, image: &ImageView<'_>) -> Result<FingerTemplate>;

    /// Short name for reports (e.g. `"classical"`).
    fn name(&self) -> &'static str;
}

/// The classical pipeline (segmentation, orientation, frequency, Gabor
/// enhancement, thinning, crossing number); pure Rust, no model files.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassicalExtractor;

/// A fingerprint image brought to 500 dpi that passed the quality gates
/// every extractor shares (size, contrast, foreground): what a learned
/// extractor needs before it runs, so it refuses the same images with the
/// same typed errors as [`ClassicalExtractor`].
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// Width at 500 dpi.
    pub width: u32,
    /// Height at 500 dpi.
    pub height: u32,
    /// Grey levels `0.0..=255.0`, row-major, at 500 dpi.
    pub pixels: Vec<f32>,
    /// Foreground mask (variance segmentation refined by orientation
    /// coherence), row-major, true = fingerprint.
    pub foreground: Vec<bool>,
    /// Fraction of the image that is foreground.
    pub foreground_fraction: f32,
    /// Contrast (95th percentile block standard deviation, grey levels).
    pub contrast: f32,
}

/// The shared front of every extractor: checks, resampling, segmentation,
/// normalisation and the orientation field.
struct Gated {
    img: plane::Plane<f32>,
    seg: segmentation::Segmentation,
    norm: plane::Plane<f32>,
    field: orientation::OrientationField,
}

fn gate(image: &ImageView<'_>) -> Result<Gated> {
    // Re-check: the fields are public, so the view may not come from new().
    let image = ImageView::new(image.width, image.height, image.pixels, image.dpi)?;
    // Check the size at 500 dpi before resampling, so a huge or empty
    // input is refused before any allocation proportional to it.
    let scale = f64::from(TARGET_DPI) / f64::from(image.dpi);
    let (w, h) = (
        (f64::from(image.width) * scale).round() as u32,
        (f64::from(image.height) * scale).round() as u32,
    );
    if w.min(h) < MIN_SIDE || w.max(h) > MAX_SIDE {
        return Err(FingerError::ImageSize {
            width: w,
            height: h,
            min: MIN_SIDE,
            max: MAX_SIDE,
        });
    }
    let img = resample::to_target_dpi(
        image.width as usize,
        image.height as usize,
        image.pixels,
        image.dpi,
    );
    let mut seg = segmentation::segment(&img);
    if seg.contrast < MIN_CONTRAST_STD {
        return Err(FingerError::LowContrast {
            contrast: seg.contrast,
            min: MIN_CONTRAST_STD,
        });
    }
    let mut norm = normalize::normalize(&img, &seg.mask);
    let field = orientation::orientation(&norm);
    segmentation::refine_with_coherence(&mut seg, &field.coherence);
    for (v, &m) in norm.data.iter_mut().zip(&seg.mask.data) {
        if !m {
            *v = 0.0;
        }
    }
    if seg.fraction < MIN_FOREGROUND_FRACTION {
        return Err(FingerError::TooLittleForeground {
            fraction: seg.fraction,
            min: MIN_FOREGROUND_FRACTION,
        });
    }
    Ok(Gated {
        img,
        seg,
        norm,
        field,
    })
}

/// Resamples `image` to 500 dpi and applies the quality gates of
/// [`ClassicalExtractor`] (size, contrast, foreground) with the same typed
/// errors; costs a few milliseconds (no enhancement, no thinning).
pub fn prepare(image: &ImageView<'_>) -> Result<PreparedImage> {
    let g = gate(image)?;
    Ok(PreparedImage {
        width: g.img.width as u32,
        height: g.img.height as u32,
        pixels: g.img.data,
        foreground: g.seg.mask.data,
        foreground_fraction: g.seg.fraction,
        contrast: g.seg.contrast,
    })
}

/// The last gate every extractor shares: fewer than [`MIN_MINUTIAE`]
/// minutiae is [`FingerError::TooFewMinutiae`]; otherwise the template of a
/// `width` × `height` image prepared at [`TARGET_DPI`] (see [`prepare`]),
/// without ridge-flow descriptors.
pub fn finish_template(width: u32, height: u32, minutiae: Vec<Minutia>) -> Result<FingerTemplate> {
    if minutiae.len() < MIN_MINUTIAE {
        return Err(FingerError::TooFewMinutiae {
            found: minutiae.len(),
            min: MIN_MINUTIAE,
        });
    }
    Ok(FingerTemplate {
        width: width as u16,
        height: height as u16,
        dpi: TARGET_DPI,
        minutiae,
        flow: Vec::new(),
    })
}

impl Extractor for ClassicalExtractor {
    fn extract(&self, image: &ImageView<'_>) -> Result<FingerTemplate> {
        let Gated {
            img,
            seg,
            norm,
            field,
        } = gate(image)?;
        let (w, h) = (img.width as u32, img.height as u32);
        let period = frequency::ridge_period(&norm, &seg.mask, &field);
        let filtered = enhance::gabor(&norm, &seg.mask, &field, period);
        let ridges = binarize::binarize(&filtered, &seg.mask);
        let skeleton = thinning::thin(&ridges);
        let inner = segmentation::erode(&seg.mask, BORDER_MARGIN);
        let depth = segmentation::depth(&seg.mask);
        let found = minutiae::detect(&skeleton, &inner, &depth, &field);
        let flow = found
            .iter()
            .map(|c| {
                crate::flow::describe(c.x as f32, c.y as f32, c.angle, |x, y| {
                    seg.mask
                        .get(x, y)
                        .filter(|&on| on)
                        .map(|_| field.angle.at(x as usize, y as usize))
                })
            })
            .collect();
        tracing::debug!(
            width = w,
            height = h,
            foreground = seg.fraction,
            contrast = seg.contrast,
            period,
            minutiae = found.len(),
            "classical extraction"
        );
        let mut template = finish_template(w, h, found.into_iter().map(Minutia::from).collect())?;
        template.flow = flow;
        Ok(template)
    }

    fn name(&self) -> &'static str {
        "classical"
    }
}
