//! FVC-protocol evaluation over folders of `NNN_M.(tif|png|bmp)` images.
//!
//! Protocol (as in the FVC competitions): genuine = every pair of
//! impressions of the same finger (symmetric pairs once); impostor = the
//! first impression of each finger against the first impression of every
//! other finger. The *extended* impostor set compares every impression with
//! every impression of every other finger, because the 45 standard
//! impostor pairs of a 10-finger B set make EER and FMR1000 very coarse.
//! A failure to enrol scores 0 in every comparison it takes part in, as in
//! FVC.
//!
//! ```
//! use sinhtrac_finger::fvc::error_rates;
//! let r = error_rates(&[0.9, 0.8, 0.7, 0.2], &[0.1, 0.15, 0.3, 0.05]);
//! assert!((r.eer - 0.25).abs() < 1e-9);
//! assert_eq!(r.zero_fmr, 0.25);
//! ```

use crate::error::{FingerError, Result};
use crate::extract::{Extractor, ImageView};
use crate::mcc::{Matcher, SearchTemplate};
use crate::template::FingerTemplate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One image of an FVC-style database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Finger number (`NNN`).
    pub finger: u32,
    /// Impression number (`M`).
    pub impression: u32,
    /// File.
    pub path: PathBuf,
}

/// Error rates from one set of genuine and impostor scores. Rates are
/// fractions in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRates {
    /// Equal error rate: (FMR+FNMR)/2 at the threshold where they are closest.
    pub eer: f64,
    /// Threshold at the EER.
    pub eer_threshold: f32,
    /// Lowest FNMR with FMR ≤ 1%.
    pub fmr100: f64,
    /// Lowest FNMR with FMR ≤ 0.1%.
    pub fmr1000: f64,
    /// Lowest FNMR with FMR = 0.
    pub zero_fmr: f64,
    /// Genuine comparisons.
    pub genuine: usize,
    /// Impostor comparisons.
    pub impostor: usize,
}

/// Results for one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseReport {
    /// Database name (folder path relative to the evaluated root).
    pub name: String,
    /// Images found.
    pub images: usize,
    /// Images the extractor rejected.
    pub failures_to_enrol: usize,
    /// Extractor used.
    pub extractor: String,
    /// Mean extraction time per image in milliseconds (single thread each).
    pub extract_ms_mean: f64,
    /// Median extraction time per image in milliseconds.
    pub extract_ms_median: f64,
    /// Mean minutiae per enrolled image.
    pub minutiae_mean: f64,
    /// Mean time per comparison in microseconds (single thread each).
    pub match_us_mean: f64,
    /// Standard FVC protocol.
    pub fvc: ErrorRates,
    /// Extended impostor set (genuine as in `fvc`).
    pub extended: ErrorRates,
    /// Threshold giving FMR ≤ 0.1% on the extended impostor set.
    pub threshold_fmr1000: f32,
    /// Genuine scores (for DET plots; not serialised).
    #[serde(skip)]
    pub genuine_scores: Vec<f32>,
    /// Extended-protocol impostor scores (for DET plots; not serialised).
    #[serde(skip)]
    pub impostor_scores: Vec<f32>,
}

/// Results for a tree of databases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FvcReport {
    /// Per database, in path order.
    pub databases: Vec<DatabaseReport>,
    /// Mean FVC-protocol EER over the databases.
    pub mean_eer: f64,
    /// Mean extended-protocol EER over the databases.
    pub mean_extended_eer: f64,
}

/// Lists the `NNN_M.ext` images directly inside `dir`, sorted.
pub fn list_samples(dir: &Path) -> Result<Vec<Sample>> {
    let rd = std::fs::read_dir(dir).map_err(|e| FingerError::Dataset {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((stem, ext)) = name.rsplit_once('.') else {
            continue;
        };
        if !matches!(
            ext.to_ascii_lowercase().as_str(),
            "tif" | "tiff" | "png" | "bmp"
        ) {
            continue;
        }
        let Some((f, i)) = stem.split_once('_') else {
            continue;
        };
        if let (Ok(finger), Ok(impression)) = (f.parse(), i.parse()) {
            out.push(Sample {
                finger,
                impression,
                path,
            });
        }
    }
    out.sort_by_key(|s| (s.finger, s.impression));
    Ok(out)
}

/// Decodes an image file to 8-bit grayscale `(width, height, pixels)`.
pub fn load_gray(path: &Path) -> Result<(u32, u32, Vec<u8>)> {
    let img = image::open(path).map_err(|e| FingerError::ImageDecode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let g = img.to_luma8();
    Ok((g.width(), g.height(), g.into_raw()))
}

/// Extracts a template from an image file.
pub fn extract_file(extractor: &dyn Extractor, path: &Path, dpi: u16) -> Result<FingerTemplate> {
    let (w, h, px) = load_gray(path)?;
    extractor.extract(&ImageView::new(w, h, &px, dpi)?)
}

/// Computes EER, FMR100, FMR1000 and ZeroFMR. Higher scores mean more
/// similar; a comparison matches when `score >= threshold`.
pub fn error_rates(genuine: &[f32], impostor: &[f32]) -> ErrorRates {
    let mut g: Vec<f32> = genuine.to_vec();
    let mut i: Vec<f32> = impostor.to_vec();
    g.sort_by(|a, b| a.total_cmp(b));
    i.sort_by(|a, b| a.total_cmp(b));
    let (ng, ni) = (g.len().max(1) as f64, i.len().max(1) as f64);
    let mut thresholds: Vec<f32> = g.iter().chain(&i).copied().collect();
    thresholds.push(f32::INFINITY);
    thresholds.sort_by(|a, b| a.total_cmp(b));
    thresholds.dedup();
    let mut best = (f64::INFINITY, 0.0, 0.0f32);
    let (mut fmr100, mut fmr1000, mut zero) = (1.0f64, 1.0f64, 1.0f64);
    for &t in &thresholds {
        let fnmr = g.partition_point(|&s| s < t) as f64 / ng;
        let fmr = (i.len() - i.partition_point(|&s| s < t)) as f64 / ni;
        let gap = (fmr - fnmr).abs();
        if gap < best.0 {
            best = (gap, (fmr + fnmr) / 2.0, t);
        }
        if fmr <= 0.01 {
            fmr100 = fmr100.min(fnmr);
        }
        if fmr <= 0.001 {
            fmr1000 = fmr1000.min(fnmr);
        }
        if fmr == 0.0 {
            zero = zero.min(fnmr);
        }
    }
    ErrorRates {
        eer: best.1,
        eer_threshold: best.2,
        fmr100,
        fmr1000,
        zero_fmr: zero,
        genuine: genuine.len(),
        impostor: impostor.len(),
    }
}

/// Smallest threshold whose false-match rate on `impostor` is ≤ `fmr`.
pub fn threshold_for_fmr(impostor: &[f32], fmr: f64) -> f32 {
    let mut i: Vec<f32> = impostor.to_vec();
    i.sort_by(|a, b| b.total_cmp(a));
    // Allowed false matches; the threshold sits just above the next one.
    let allowed = (fmr * i.len() as f64).floor() as usize;
    match i.get(allowed) {
        Some(&s) => next_up(s),
        None => 0.0,
    }
}

fn next_up(x: f32) -> f32 {
    f32::from_bits(x.to_bits() + 1)
}

/// Evaluates one folder of `NNN_M` images at `dpi`.
pub fn evaluate_database(
    dir: &Path,
    extractor: &dyn Extractor,
    dpi: u16,
) -> Result<DatabaseReport> {
    evaluate_database_cross(dir, extractor, None, dpi)
}

/// Extracts every sample with `extractor` (in parallel), timing each.
fn extract_all(
    samples: &[Sample],
    extractor: &dyn Extractor,
    dpi: u16,
) -> Result<Vec<(Option<FingerTemplate>, f64)>> {
    samples
        .par_iter()
        .map(|s| -> Result<(Option<FingerTemplate>, f64)> {
            let (w, h, px) = load_gray(&s.path)?;
            let view = ImageView::new(w, h, &px, dpi)?;
            let t0 = Instant::now();
            let t = extractor.extract(&view);
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            if let Err(e) = &t {
                tracing::warn!(path = %s.path.display(), error = %e, "failure to enrol");
            }
            Ok((t.ok(), ms))
        })
        .collect()
}

/// As [`evaluate_database`], but with `probe` (when given) extracting the
/// probe side of every comparison: in each pair the earlier image (in
/// `NNN_M` order) is enrolled with `gallery`, the later one verified with
/// `probe` (e.g. careful enrolment with a slow extractor, fast
/// verification with another). Extraction figures are the gallery
/// extractor's; a failure to enrol counts on either side.
pub fn evaluate_database_cross(
    dir: &Path,
    gallery: &dyn Extractor,
    probe: Option<&dyn Extractor>,
    dpi: u16,
) -> Result<DatabaseReport> {
    let samples = list_samples(dir)?;
    if samples.is_empty() {
        return Err(FingerError::Dataset {
            path: dir.to_path_buf(),
            message: "no NNN_M.(tif|png|bmp) images".into(),
        });
    }
    let extracted = extract_all(&samples, gallery, dpi)?;
    let probed = match probe {
        Some(p) => Some(extract_all(&samples, p, dpi)?),
        None => None,
    };
    let gallery_side: Vec<Option<Matcher>> = extracted
        .iter()
        .map(|(t, _)| t.as_ref().map(Matcher::new))
        .collect();
    let probe_side: Option<Vec<Option<Matcher>>> = probed.as_ref().map(|p| {
        p.iter()
            .map(|(t, _)| t.as_ref().map(Matcher::new))
            .collect()
    });
    // Same extractor: image a is the probe, as always; cross: the later
    // image b is the probe (extracted by `probe`), a the enrolled one.
    let pair = |a: usize, b: usize| -> Option<(&Matcher, &SearchTemplate)> {
        match &probe_side {
            None => Some((gallery_side[a].as_ref()?, gallery_side[b].as_ref()?.probe())),
            Some(p) => Some((p[b].as_ref()?, gallery_side[a].as_ref()?.probe())),
        }
    };
    let mut genuine_pairs = Vec::new();
    let mut standard_pairs = Vec::new();
    let mut extended_pairs = Vec::new();
    let first_of = |finger: u32| samples.iter().position(|s| s.finger == finger);
    for a in 0..samples.len() {
        for b in a + 1..samples.len() {
            let (sa, sb) = (&samples[a], &samples[b]);
            if sa.finger == sb.finger {
                genuine_pairs.push((a, b));
            } else {
                extended_pairs.push((a, b));
                if first_of(sa.finger) == Some(a) && first_of(sb.finger) == Some(b) {
                    standard_pairs.push((a, b));
                }
            }
        }
    }
    let score_all = |pairs: &[(usize, usize)]| -> Vec<(f32, f64)> {
        pairs
            .par_iter()
            .map(|&(a, b)| match pair(a, b) {
                Some((m, candidate)) => {
                    let t0 = Instant::now();
                    let s = m.score(candidate);
                    (s, t0.elapsed().as_secs_f64() * 1e6)
                }
                _ => (0.0, 0.0),
            })
            .collect()
    };
    let genuine = score_all(&genuine_pairs);
    let standard = score_all(&standard_pairs);
    let extended = score_all(&extended_pairs);
    let only = |v: &[(f32, f64)]| v.iter().map(|x| x.0).collect::<Vec<f32>>();
    let timed: Vec<f64> = genuine
        .iter()
        .chain(&extended)
        .filter(|x| x.1 > 0.0)
        .map(|x| x.1)
        .collect();
    let mut ms: Vec<f64> = extracted.iter().map(|x| x.1).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let enrolled: Vec<&FingerTemplate> = extracted.iter().filter_map(|x| x.0.as_ref()).collect();
    let failures = match &probed {
        Some(p) => extracted
            .iter()
            .zip(p)
            .filter(|(g, p)| g.0.is_none() || p.0.is_none())
            .count(),
        None => samples.len() - enrolled.len(),
    };
    let g = only(&genuine);
    Ok(DatabaseReport {
        name: dir.display().to_string(),
        images: samples.len(),
        failures_to_enrol: failures,
        extractor: match probe {
            Some(p) => format!("{}>{}", gallery.name(), p.name()),
            None => gallery.name().to_string(),
        },
        extract_ms_mean: ms.iter().sum::<f64>() / ms.len() as f64,
        extract_ms_median: ms[ms.len() / 2],
        minutiae_mean: enrolled
            .iter()
            .map(|t| t.minutiae.len() as f64)
            .sum::<f64>()
            / enrolled.len().max(1) as f64,
        match_us_mean: timed.iter().sum::<f64>() / timed.len().max(1) as f64,
        fvc: error_rates(&g, &only(&standard)),
        extended: error_rates(&g, &only(&extended)),
        threshold_fmr1000: threshold_for_fmr(&only(&extended), 1e-3),
        impostor_scores: only(&extended),
        genuine_scores: g,
    })
}

/// Evaluates `root` if it holds images itself, else every folder below it
/// (up to three levels) that does; databases are reported in path order.
pub fn evaluate_tree(root: &Path, extractor: &dyn Extractor, dpi: u16) -> Result<FvcReport> {
    evaluate_tree_cross(root, extractor, None, dpi)
}

/// [`evaluate_tree`] with [`evaluate_database_cross`] per database.
pub fn evaluate_tree_cross(
    root: &Path,
    gallery: &dyn Extractor,
    probe: Option<&dyn Extractor>,
    dpi: u16,
) -> Result<FvcReport> {
    let mut databases = Vec::new();
    for (name, dir) in databases_under(root)? {
        let mut r = evaluate_database_cross(&dir, gallery, probe, dpi)?;
        r.name = name;
        databases.push(r);
    }
    let n = databases.len() as f64;
    Ok(FvcReport {
        mean_eer: databases.iter().map(|d| d.fvc.eer).sum::<f64>() / n,
        mean_extended_eer: databases.iter().map(|d| d.extended.eer).sum::<f64>() / n,
        databases,
    })
}

/// The databases [`evaluate_tree`] reports, as (name, folder): `root` if it
/// holds images itself, else every folder below it (up to three levels)
/// that does, in path order, named by their path below `root`.
pub fn databases_under(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut dirs = Vec::new();
    collect_dirs(root, 0, &mut dirs)?;
    if dirs.is_empty() {
        return Err(FingerError::Dataset {
            path: root.to_path_buf(),
            message: "no folder with NNN_M.(tif|png|bmp) images".into(),
        });
    }
    dirs.sort();
    Ok(dirs
        .into_iter()
        .map(|d| {
            let name = d
                .strip_prefix(root)
                .ok()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(&d)
                .display()
                .to_string();
            (name, d)
        })
        .collect())
}

fn collect_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if !list_samples(dir)?.is_empty() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    if depth >= 3 {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| FingerError::Dataset {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    for e in rd.flatten() {
        if e.path().is_dir() {
            collect_dirs(&e.path(), depth + 1, out)?;
        }
    }
    Ok(())
}
