//! Shared helpers for sinhtrac's integration tests: where the real data is (failing loudly when it is
//! missing), one loaded face engine per test binary, and builders for hostile inputs.
#![allow(missing_docs)]

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;

use image::{DynamicImage, ImageFormat, RgbImage};
use sinhtrac_engine::face::{FaceConfig, FaceEngine};

/// `$SINHTRAC_SHARED/datasets`; panics naming the path when it is absent (never skip silently).
pub fn datasets() -> PathBuf {
    let d = sinhtrac_engine::paths::datasets_dir();
    assert!(
        d.join("lfw/pairs.txt").is_file(),
        "test data missing: {} has no lfw/pairs.txt (run scripts/setup.sh or set SINHTRAC_SHARED)",
        d.display()
    );
    d
}

/// An LFW image path, e.g. `lfw("Aaron_Peirsol", 1)`.
pub fn lfw(name: &str, index: u32) -> PathBuf {
    datasets().join(format!("lfw/images/{name}/{name}_{index:04}.jpg"))
}

/// An FVC image path, e.g. `fvc("fvc2002/DB1_B", 101, 1)`; panics naming it when it is absent.
pub fn fvc(db: &str, finger: u32, impression: u32) -> PathBuf {
    let p = datasets().join(format!("fingerprints/{db}/{finger}_{impression}.tif"));
    assert!(p.is_file(), "test data missing: {}", p.display());
    p
}

/// Raw bytes of a file, panicking with its path.
pub fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Decode a file to RGB with default limits.
pub fn rgb(path: &std::path::Path) -> RgbImage {
    sinhtrac_engine::image::decode(&read(path), &Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .rgb
}

/// The default face engine, loaded once per test binary (models verified by checksum).
pub fn engine() -> &'static FaceEngine {
    static ENGINE: OnceLock<FaceEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        FaceEngine::load(FaceConfig::default())
            .unwrap_or_else(|e| panic!("cannot load the face models (run scripts/setup.sh): {e}"))
    })
}

/// Encode an image in a container format.
pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("encoding {format:?}: {e}"));
    out.into_inner()
}

/// A lossless TIFF whose Orientation tag (EXIF/TIFF tag 274) carries `orientation`.
pub fn tiff_with_orientation(img: &RgbImage, orientation: u16) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut enc = tiff::encoder::TiffEncoder::new(&mut out).expect("tiff encoder");
    let mut image = enc
        .new_image::<tiff::encoder::colortype::RGB8>(img.width(), img.height())
        .expect("tiff image");
    image
        .encoder()
        .write_tag(tiff::tags::Tag::Orientation, orientation)
        .expect("orientation tag");
    image.write_data(img.as_raw()).expect("tiff data");
    out.into_inner()
}

/// Encode as a high-quality JPEG (quality 98), so that lossy re-encoding does not mask what a test checks.
pub fn jpeg_q98(img: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 98)
        .encode_image(img)
        .unwrap_or_else(|e| panic!("encoding JPEG: {e}"));
    out
}

/// Insert an EXIF APP1 segment carrying `orientation` right after a JPEG's SOI marker.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "not a JPEG");
    // TIFF header (little-endian) + one IFD entry: tag 0x0112 (Orientation), type SHORT, count 1.
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = (app1.len() + 2) as u16;
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A PNG whose header declares `width`×`height` but carries almost no data: a forged huge image.
pub fn png_with_forged_size(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    sinhtrac_engine::template::cosine(a, b).expect("comparable vectors")
}
