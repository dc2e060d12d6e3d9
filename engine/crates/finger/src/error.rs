//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in extraction, template coding, matching
/// or evaluation. Input-derived problems are always one of these, never a
/// panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FingerError {
    /// Pixel buffer length does not equal `width * height`.
    #[error("image buffer has {len} bytes, expected {width}x{height}")]
    BufferSize {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Actual buffer length.
        len: usize,
    },
    /// Image side (after rescaling to 500 dpi) outside the accepted range.
    #[error("image size {width}x{height} outside {min}..={max} px per side")]
    ImageSize {
        /// Width after rescaling.
        width: u32,
        /// Height after rescaling.
        height: u32,
        /// Minimum side.
        min: u32,
        /// Maximum side.
        max: u32,
    },
    /// Resolution outside the accepted range.
    #[error("resolution {dpi} dpi outside {min}..={max}")]
    Resolution {
        /// Declared resolution.
        dpi: u32,
        /// Minimum.
        min: u16,
        /// Maximum.
        max: u16,
    },
    /// The segmentation found too little fingerprint area.
    #[error("too little foreground: {fraction:.3} of the image (minimum {min:.3})")]
    TooLittleForeground {
        /// Foreground fraction found.
        fraction: f32,
        /// Required fraction.
        min: f32,
    },
    /// Ridges are too faint to extract reliably.
    #[error("contrast too low: std {contrast:.1} grey levels (minimum {min:.1})")]
    LowContrast {
        /// Measured contrast (95th percentile block std).
        contrast: f32,
        /// Required contrast.
        min: f32,
    },
    /// Too few minutiae survived filtering.
    #[error("too few minutiae: {found} (minimum {min})")]
    TooFewMinutiae {
        /// Minutiae found.
        found: usize,
        /// Required minimum.
        min: usize,
    },
    /// A template or record ended before a field could be read.
    #[error("truncated {format}: needed {needed} bytes at offset {offset}, have {len}")]
    Truncated {
        /// Format being parsed.
        format: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Total length available.
        len: usize,
    },
    /// Wrong magic bytes.
    #[error("bad magic in {format}: {found:02x?}")]
    BadMagic {
        /// Format being parsed.
        format: &'static str,
        /// Bytes found.
        found: Vec<u8>,
    },
    /// Version not supported by this codec.
    #[error("unsupported {format} version {found:?}")]
    UnsupportedVersion {
        /// Format being parsed.
        format: &'static str,
        /// Version found (as printed).
        found: String,
    },
    /// A declared length disagrees with the data.
    #[error("{format} length mismatch: header says {declared}, data has {actual}")]
    LengthMismatch {
        /// Format being parsed.
        format: &'static str,
        /// Length from the header.
        declared: usize,
        /// Actual length.
        actual: usize,
    },
    /// A field holds a value outside its legal range.
    #[error("{format}: field {field} = {value} out of range")]
    OutOfRange {
        /// Format being parsed or written.
        format: &'static str,
        /// Field name.
        field: &'static str,
        /// Offending value.
        value: i64,
    },
    /// Stored checksum does not match the content.
    #[error("checksum mismatch in {format}")]
    Checksum {
        /// Format being parsed.
        format: &'static str,
    },
    /// An image file could not be read or decoded.
    #[error("cannot decode image {path}: {message}")]
    ImageDecode {
        /// File path.
        path: PathBuf,
        /// Decoder message.
        message: String,
    },
    /// A learned extractor's model could not be run on this image (the
    /// runtime failed or the output did not have the expected shape).
    #[error("extractor {extractor}: {message}")]
    Model {
        /// Extractor name (e.g. `"leader"`).
        extractor: &'static str,
        /// What failed.
        message: String,
    },
    /// A dataset folder is missing or malformed.
    #[error("dataset {path}: {message}")]
    Dataset {
        /// Folder path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, FingerError>;
