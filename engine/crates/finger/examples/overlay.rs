//! Draws extracted minutiae over an image (debug aid).
//! `overlay <in.tif> <out.png>`: endings red, bifurcations blue.

use sinhtrac_finger::{fvc, ClassicalExtractor, MinutiaKind};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (src, dst) = (args.next().ok_or("in")?, args.next().ok_or("out")?);
    let t = fvc::extract_file(&ClassicalExtractor, &src, 500)?;
    let (w, h, px) = fvc::load_gray(&src)?;
    let mut img = image::RgbImage::new(w, h);
    for (i, p) in img.pixels_mut().enumerate() {
        *p = image::Rgb([px[i]; 3]);
    }
    for m in &t.minutiae {
        let c = if m.kind == MinutiaKind::Ending {
            [255, 0, 0]
        } else {
            [0, 0, 255]
        };
        for d in -3i32..=3 {
            for (x, y) in [
                (i32::from(m.x) + d, i32::from(m.y)),
                (i32::from(m.x), i32::from(m.y) + d),
            ] {
                if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                    img.put_pixel(x as u32, y as u32, image::Rgb(c));
                }
            }
        }
        for r in 4..12 {
            let x = f32::from(m.x) + r as f32 * m.angle.cos();
            let y = f32::from(m.y) + r as f32 * m.angle.sin();
            if x >= 0.0 && y >= 0.0 && (x as u32) < w && (y as u32) < h {
                img.put_pixel(x as u32, y as u32, image::Rgb([0, 160, 0]));
            }
        }
    }
    img.save(&dst)?;
    println!("{} minutiae", t.minutiae.len());
    Ok(())
}
