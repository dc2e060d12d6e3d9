//! Image intake: untrusted bytes in, an upright 8-bit RGB image out.
//!
//! Every limit (bytes, width, height, pixel count, decoder allocation) is checked *before* the pixel
//! buffer is allocated, so a decompression bomb or a forged 60000×60000 header is a typed error, not an
//! out-of-memory kill. EXIF orientation is applied; grayscale, CMYK, 16-bit and alpha inputs are converted.

mod resize;

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

pub(crate) use resize::round_u8;
#[cfg(test)]
pub(crate) use resize::rounding_probes;
pub use resize::{resize_area, resize_bilinear};

/// Why an image was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No bytes at all.
    #[error("image is empty")]
    Empty,
    /// More bytes than allowed.
    #[error("image is {bytes} bytes, more than the limit of {max}")]
    TooManyBytes {
        /// Size of the input.
        bytes: usize,
        /// Configured limit.
        max: usize,
    },
    /// Not a format we decode (JPEG, PNG, TIFF, BMP, WebP).
    #[error("unsupported or unrecognised image format{0}")]
    UnsupportedFormat(String),
    /// The header declares dimensions over the limits.
    #[error("image is {width}x{height}, over the limit ({reason})")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Which limit.
        reason: String,
    },
    /// Declared dimensions are zero.
    #[error("image has zero width or height")]
    ZeroSize,
    /// The data is corrupt or truncated.
    #[error("image data is corrupt or truncated: {0}")]
    Corrupt(String),
    /// The file could not be read at all.
    #[error("cannot read image file {path}: {detail}")]
    Unreadable {
        /// File.
        path: String,
        /// Why.
        detail: String,
    },
}

impl ImageError {
    /// Stable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            ImageError::Empty => "IMAGE_EMPTY",
            ImageError::TooManyBytes { .. } | ImageError::TooLarge { .. } => "IMAGE_TOO_LARGE",
            ImageError::UnsupportedFormat(_) => "IMAGE_UNSUPPORTED_FORMAT",
            ImageError::ZeroSize | ImageError::Corrupt(_) => "IMAGE_CORRUPT",
            ImageError::Unreadable { .. } => "IMAGE_UNREADABLE",
        }
    }
}

/// Limits applied before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DecodeLimits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Largest accepted width or height, in pixels.
    pub max_side: u32,
    /// Largest accepted width × height.
    pub max_pixels: u64,
    /// Largest allocation the decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    /// 20 MiB, 12,000 px a side, 40 Mpx: more than any camera or ID-card photo needs.
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 20 << 20,
            max_side: 12_000,
            max_pixels: 40_000_000,
            max_alloc: 512 << 20,
        }
    }
}

/// A decoded image with what we learnt about its source.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    /// Upright 8-bit RGB pixels.
    pub rgb: RgbImage,
    /// Detected container format.
    pub format: &'static str,
    /// EXIF orientation that was applied (1 = none), as in the EXIF standard.
    pub exif_orientation: u8,
}

fn format_name(f: ImageFormat) -> Option<&'static str> {
    Some(match f {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::Tiff => "tiff",
        ImageFormat::Bmp => "bmp",
        ImageFormat::WebP => "webp",
        _ => return None,
    })
}

fn map_decode_error(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(l) => ImageError::TooLarge {
            width: 0,
            height: 0,
            reason: l.to_string(),
        },
        image::ImageError::Unsupported(u) => ImageError::UnsupportedFormat(format!(": {u}")),
        other => ImageError::Corrupt(other.to_string()),
    }
}

fn orientation_code(o: image::metadata::Orientation) -> u8 {
    use image::metadata::Orientation::*;
    match o {
        NoTransforms => 1,
        FlipHorizontal => 2,
        Rotate180 => 3,
        FlipVertical => 4,
        Rotate90FlipH => 5,
        Rotate90 => 6,
        Rotate270FlipH => 7,
        Rotate270 => 8,
    }
}

/// Decode untrusted bytes into an upright RGB image under `limits`.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooManyBytes {
            bytes: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ImageError::Corrupt(e.to_string()))
    };
    let mut reader_main = reader()?;
    let format = reader_main
        .format()
        .and_then(format_name)
        .ok_or_else(|| ImageError::UnsupportedFormat(String::new()))?;
    // Read the header alone first, so an over-limit image is reported with the size it declares.
    let (width, height) = reader()?.into_dimensions().map_err(map_decode_error)?;
    check_dimensions(width, height, limits)?;
    // JPEG decoders fill a truncated scan with grey and report success: a photo cut in transit would
    // silently become a different face. Require the end-of-image marker after the last scan.
    if format == "jpeg" && !jpeg_has_end_marker(bytes) {
        return Err(ImageError::Corrupt(
            "JPEG is truncated (no end-of-image marker after the last scan)".into(),
        ));
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    decoder_limits.max_alloc = Some(limits.max_alloc);
    reader_main.limits(decoder_limits);
    let mut decoder = reader_main.into_decoder().map_err(map_decode_error)?;
    // The decoder's own view of the size must agree with the header we checked.
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    // A missing or unreadable EXIF block is not an error: treat the image as upright.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match map_decode_error(e) {
        ImageError::TooLarge { reason, .. } => ImageError::TooLarge {
            width,
            height,
            reason,
        },
        other => other,
    })?;
    img.apply_orientation(orientation);
    Ok(DecodedImage {
        rgb: to_rgb8(img),
        format,
        exif_orientation: orientation_code(orientation),
    })
}

fn check_dimensions(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::ZeroSize);
    }
    if width > limits.max_side || height > limits.max_side {
        return Err(ImageError::TooLarge {
            width,
            height,
            reason: format!("max side {} px", limits.max_side),
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageError::TooLarge {
            width,
            height,
            reason: format!("max {} pixels", limits.max_pixels),
        });
    }
    Ok(())
}

/// True when an end-of-image marker (FF D9) follows the last start-of-scan marker (FF DA). Inside
/// entropy-coded data an FF byte is always followed by 00 or a restart marker, so FF D9 there can only
/// be the real end; an embedded EXIF thumbnail's EOI comes before the main scans.
fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(i) => bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// Convert any decoded colour type to 8-bit RGB (16-bit scaled, alpha dropped, grey replicated).
fn to_rgb8(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

/// Read a file and [`decode`] it.
pub fn decode_file(
    path: &std::path::Path,
    limits: &DecodeLimits,
) -> Result<DecodedImage, ImageError> {
    let unreadable = |e: std::io::Error| ImageError::Unreadable {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.len() > limits.max_bytes as u64 {
        return Err(ImageError::TooManyBytes {
            bytes: meta.len() as usize,
            max: limits.max_bytes,
        });
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    decode(&bytes, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(img: &DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_grayscale_and_16_bit_png_to_rgb() {
        let gray = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(4, 3, image::Luma([200])));
        let d = decode(&png_bytes(&gray), &DecodeLimits::default()).unwrap();
        assert_eq!(d.rgb.dimensions(), (4, 3));
        assert_eq!(d.rgb.get_pixel(1, 1).0, [200, 200, 200]);
        let deep = DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(
            2,
            2,
            image::Rgb([65535u16, 0, 32896]),
        ));
        let d = decode(&png_bytes(&deep), &DecodeLimits::default()).unwrap();
        assert_eq!(d.rgb.get_pixel(0, 0).0, [255, 0, 128]);
        assert_eq!(d.format, "png");
    }

    #[test]
    fn refuses_empty_unknown_and_truncated() {
        let limits = DecodeLimits::default();
        assert!(matches!(decode(&[], &limits), Err(ImageError::Empty)));
        assert!(matches!(
            decode(b"hello world", &limits),
            Err(ImageError::UnsupportedFormat(_))
        ));
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3])));
        let bytes = png_bytes(&img);
        let cut = &bytes[..bytes.len() / 2];
        assert!(matches!(decode(cut, &limits), Err(ImageError::Corrupt(_))));
    }

    #[test]
    fn refuses_too_many_bytes_before_decoding() {
        let limits = DecodeLimits {
            max_bytes: 10,
            ..DecodeLimits::default()
        };
        let img = DynamicImage::ImageRgb8(RgbImage::new(8, 8));
        assert!(matches!(
            decode(&png_bytes(&img), &limits),
            Err(ImageError::TooManyBytes { .. })
        ));
    }
}
