//! Image intake on real photos and hostile inputs: every format and colour type decodes to the same
//! upright RGB picture; bombs, forged headers, corrupt and truncated data are typed errors.

use image::{DynamicImage, ImageFormat};
use sinhtrac_engine::image::{decode, DecodeLimits, ImageError};
use sinhtrac_tests::{encode, lfw, png_with_forged_size, read, rgb, with_exif_orientation};

fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let s: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (*x as i64 - *y as i64).unsigned_abs())
        .sum();
    s as f64 / a.as_raw().len() as f64
}

#[test]
fn every_container_format_decodes_to_the_same_picture() {
    let original = rgb(&lfw("Aaron_Peirsol", 1));
    let img = DynamicImage::ImageRgb8(original.clone());
    for format in [
        ImageFormat::Png,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
        ImageFormat::WebP,
    ] {
        let d = decode(&encode(&img, format), &DecodeLimits::default()).unwrap();
        // All four are lossless here.
        assert_eq!(d.rgb, original, "{format:?} changed the pixels");
    }
    let jpeg = decode(&read(&lfw("Aaron_Peirsol", 1)), &DecodeLimits::default()).unwrap();
    assert_eq!(jpeg.format, "jpeg");
}

#[test]
fn grayscale_16_bit_and_cmyk_inputs_become_rgb() {
    let original = rgb(&lfw("Aaron_Peirsol", 1));
    let gray = DynamicImage::ImageRgb8(original.clone()).to_luma8();
    let d = decode(
        &encode(&DynamicImage::ImageLuma8(gray.clone()), ImageFormat::Png),
        &DecodeLimits::default(),
    )
    .unwrap();
    assert!(d
        .rgb
        .pixels()
        .zip(gray.pixels())
        .all(|(c, g)| c.0 == [g.0[0]; 3]));

    let deep = DynamicImage::ImageRgb8(original.clone()).to_rgb16();
    let d = decode(
        &encode(&DynamicImage::ImageRgb16(deep), ImageFormat::Png),
        &DecodeLimits::default(),
    )
    .unwrap();
    assert_eq!(
        d.rgb, original,
        "16-bit PNG must scale back to the same 8-bit values"
    );

    // CMYK TIFF (as scanners and print workflows write), built with the tiff crate.
    let cmyk: Vec<u8> = original
        .pixels()
        .flat_map(|p| {
            let [r, g, b] = p.0.map(|v| v as f32 / 255.0);
            let k = 1.0 - r.max(g).max(b);
            let c = |x: f32| {
                if k >= 1.0 {
                    0
                } else {
                    ((1.0 - x - k) / (1.0 - k) * 255.0).round() as u8
                }
            };
            [c(r), c(g), c(b), (k * 255.0).round() as u8]
        })
        .collect();
    let mut bytes = std::io::Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut bytes)
        .unwrap()
        .write_image::<tiff::encoder::colortype::CMYK8>(original.width(), original.height(), &cmyk)
        .unwrap();
    let d = decode(bytes.get_ref(), &DecodeLimits::default()).expect("CMYK TIFF decodes");
    assert!(
        mean_abs_diff(&d.rgb, &original) < 2.0,
        "CMYK conversion is off by {}",
        mean_abs_diff(&d.rgb, &original)
    );
}

#[test]
fn exif_orientation_is_applied() {
    let upright = rgb(&lfw("Aaron_Peirsol", 1));
    // Stored rotated 90° anticlockwise; EXIF 6 says "rotate 90° clockwise to display".
    let stored = DynamicImage::ImageRgb8(image::imageops::rotate270(&upright));
    let bytes = with_exif_orientation(&encode(&stored, ImageFormat::Jpeg), 6);
    let d = decode(&bytes, &DecodeLimits::default()).unwrap();
    assert_eq!(d.exif_orientation, 6);
    assert_eq!(d.rgb.dimensions(), upright.dimensions());
    assert!(
        mean_abs_diff(&d.rgb, &upright) < 4.0,
        "rotation not applied"
    );
}

#[test]
fn forged_huge_header_is_refused_before_allocation() {
    let e = decode(
        &png_with_forged_size(60_000, 60_000),
        &DecodeLimits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::TooLarge {
                width: 60_000,
                height: 60_000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.reason(), "IMAGE_TOO_LARGE");
    // Within the per-side limit but over the pixel budget (a decompression bomb).
    let e = decode(
        &png_with_forged_size(10_000, 10_000),
        &DecodeLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, ImageError::TooLarge { .. }), "{e:?}");
}

#[test]
fn real_decompression_bomb_is_refused() {
    // 8000×8000 black PNG: a few hundred KB on the wire, 192 MB decoded.
    let bomb = encode(
        &DynamicImage::ImageLuma8(image::GrayImage::new(8000, 8000)),
        ImageFormat::Png,
    );
    assert!(bomb.len() < 1 << 20);
    let limits = DecodeLimits {
        max_pixels: 20_000_000,
        ..DecodeLimits::default()
    };
    assert!(matches!(
        decode(&bomb, &limits),
        Err(ImageError::TooLarge { .. })
    ));
}

#[test]
fn corrupt_and_truncated_images_are_typed_errors() {
    let jpeg = read(&lfw("Aaron_Peirsol", 1));
    let limits = DecodeLimits::default();
    // Right magic, garbage after it.
    let mut garbage = jpeg[..4].to_vec();
    garbage.extend(std::iter::repeat_n(0x5Au8, 4000));
    assert!(matches!(
        decode(&garbage, &limits),
        Err(ImageError::Corrupt(_))
    ));
    // Truncated in the middle of the entropy-coded data.
    let cut = &jpeg[..jpeg.len() / 2];
    match decode(cut, &limits) {
        Err(e) => assert_eq!(e.reason(), "IMAGE_CORRUPT", "{e:?}"),
        Ok(_) => panic!("a JPEG cut in half decoded without error"),
    }
    // The intact file still decodes (the end-marker check is not over-eager).
    assert!(decode(&jpeg, &limits).is_ok());
    // Truncated PNG.
    let png = encode(
        &DynamicImage::ImageRgb8(rgb(&lfw("Aaron_Peirsol", 1))),
        ImageFormat::Png,
    );
    assert!(matches!(
        decode(&png[..png.len() - 100], &limits),
        Err(ImageError::Corrupt(_))
    ));
    assert!(matches!(
        decode(b"GIF89a not supported", &limits),
        Err(ImageError::UnsupportedFormat(_))
    ));
    assert!(matches!(decode(&[], &limits), Err(ImageError::Empty)));
}

#[test]
fn a_missing_file_is_unreadable_not_corrupt() {
    let e = sinhtrac_engine::image::decode_file(
        std::path::Path::new("/nonexistent/selfie.jpg"),
        &DecodeLimits::default(),
    )
    .unwrap_err();
    assert_eq!(e.reason(), "IMAGE_UNREADABLE");
    assert!(e.to_string().contains("/nonexistent/selfie.jpg"));
}
