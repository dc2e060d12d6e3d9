//! Bad images give typed errors, never panics.

mod common;

use sinhtrac_finger::{fvc, ClassicalExtractor, Extractor, FingerError, ImageView};

#[test]
fn buffer_and_resolution_are_checked() {
    let px = vec![0u8; 100];
    assert!(matches!(
        ImageView::new(20, 20, &px, 500),
        Err(FingerError::BufferSize { .. })
    ));
    let px = vec![0u8; 400];
    assert!(matches!(
        ImageView::new(20, 20, &px, 0),
        Err(FingerError::Resolution { .. })
    ));
    assert!(matches!(
        ImageView::new(20, 20, &px, 60000),
        Err(FingerError::Resolution { .. })
    ));
    // A hand-built view with a lying size is caught too.
    let view = ImageView {
        width: 30,
        height: 30,
        pixels: &px,
        dpi: 500,
    };
    assert!(matches!(
        ClassicalExtractor.extract(&view),
        Err(FingerError::BufferSize { .. })
    ));
}

#[test]
fn too_small_flat_and_empty_images() {
    let px = vec![0u8; 20 * 20];
    let small = ImageView::new(20, 20, &px, 500).expect("view");
    assert!(matches!(
        ClassicalExtractor.extract(&small),
        Err(FingerError::ImageSize { .. })
    ));

    // Empty images at any resolution are refused before resampling.
    for dpi in [250u16, 500, 1000] {
        let empty = ImageView::new(0, 0, &[], dpi).expect("view");
        assert!(matches!(
            ClassicalExtractor.extract(&empty),
            Err(FingerError::ImageSize { .. })
        ));
    }
    // 30 px at 250 dpi is 60 px at 500 dpi: below the 64 px minimum.
    let narrow = vec![0u8; 30 * 400];
    let v = ImageView::new(30, 400, &narrow, 250).expect("view");
    assert!(matches!(
        ClassicalExtractor.extract(&v),
        Err(FingerError::ImageSize { .. })
    ));

    let flat = vec![200u8; 300 * 300];
    let v = ImageView::new(300, 300, &flat, 500).expect("view");
    assert!(matches!(
        ClassicalExtractor.extract(&v),
        Err(FingerError::LowContrast { .. })
    ));

    // A real print pasted as a small patch into a blank canvas: contrast is
    // fine, but the fingerprint area is too small.
    let (w, h, px) =
        fvc::load_gray(&common::db("fvc2002/DB1_B").join("101_1.tif")).expect("decode");
    let (cw, ch) = (1200usize, 1200usize);
    let mut canvas = vec![255u8; cw * ch];
    for y in 0..(h as usize).min(60) {
        for x in 0..(w as usize).min(60) {
            canvas[y * cw + x] = px[(y + h as usize / 2) * w as usize + x + w as usize / 2];
        }
    }
    let v = ImageView::new(cw as u32, ch as u32, &canvas, 500).expect("view");
    let err = ClassicalExtractor
        .extract(&v)
        .expect_err("tiny patch must be rejected");
    assert!(
        matches!(
            err,
            FingerError::TooLittleForeground { .. } | FingerError::TooFewMinutiae { .. }
        ),
        "{err}"
    );
}

#[test]
fn noise_gives_a_quality_error_or_few_minutiae() {
    let mut s = 12345u32;
    let noise: Vec<u8> = (0..256 * 256)
        .map(|_| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (s >> 16) as u8
        })
        .collect();
    let v = ImageView::new(256, 256, &noise, 500).expect("view");
    // White noise has no ridge orientation: either rejected or nearly empty.
    match ClassicalExtractor.extract(&v) {
        Err(_) => {}
        Ok(t) => assert!(
            t.minutiae.len() < 40,
            "{} minutiae from noise",
            t.minutiae.len()
        ),
    }
}

#[test]
fn undecodable_file_is_a_typed_error() {
    let dir = std::env::temp_dir().join(format!("sinhtrac-finger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("101_1.tif");
    std::fs::write(&path, b"II*\0 definitely not a tiff").expect("write");
    let err = fvc::extract_file(&ClassicalExtractor, &path, 500).expect_err("must fail");
    assert!(matches!(err, FingerError::ImageDecode { .. }), "{err}");
    let err = fvc::evaluate_database(&dir.join("missing"), &ClassicalExtractor, 500)
        .expect_err("missing dir");
    assert!(matches!(err, FingerError::Dataset { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
