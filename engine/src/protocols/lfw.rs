//! The LFW verification protocol (View 2): `pairs.txt` as in the LFW README, images under
//! `images/<Name>/<Name>_NNNN.jpg`. The header gives the fold count and the pairs per class per fold
//! (`10 300`: each fold has 300 same-person then 300 different-person lines).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::cache::TemplateCache;
use super::extract::extract_files;
use crate::face::FaceEngine;

/// Errors reading a protocol.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The pairs file is malformed.
    #[error("{path}:{line}: {detail}")]
    Malformed {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// A dataset folder does not hold what the protocol needs.
    #[error("{path}: {detail}")]
    Dataset {
        /// Folder.
        path: PathBuf,
        /// What is missing.
        detail: String,
    },
}

/// One comparison of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Fold index (0-based).
    pub fold: usize,
    /// First image (relative to the images folder).
    pub a: String,
    /// Second image.
    pub b: String,
    /// Same identity?
    pub genuine: bool,
}

/// The parsed protocol.
#[derive(Debug, Clone)]
pub struct LfwProtocol {
    /// Dataset root (holds `pairs.txt` and `images/`).
    pub root: PathBuf,
    /// Number of folds.
    pub folds: usize,
    /// Pairs per class per fold.
    pub per_fold: usize,
    /// All pairs, in file order.
    pub pairs: Vec<Pair>,
}

fn image_name(name: &str, index: &str) -> Option<String> {
    let n: u32 = index.parse().ok()?;
    Some(format!("{name}/{name}_{n:04}.jpg"))
}

impl LfwProtocol {
    /// Read `<root>/pairs.txt`.
    pub fn load(root: &Path) -> Result<Self, ProtocolError> {
        let path = root.join("pairs.txt");
        let text = std::fs::read_to_string(&path).map_err(|source| ProtocolError::Io {
            path: path.clone(),
            source,
        })?;
        let bad = |line: usize, detail: String| ProtocolError::Malformed {
            path: path.clone(),
            line,
            detail,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or_else(|| bad(1, "empty file".into()))?;
        let h: Vec<usize> = header
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        let (folds, per_fold) = match h[..] {
            [f, p] if f > 0 && p > 0 => (f, p),
            _ => {
                return Err(bad(
                    1,
                    format!("header must be '<folds> <pairs per fold>', got {header:?}"),
                ))
            }
        };
        let mut pairs = Vec::with_capacity(folds * per_fold * 2);
        for (i, (lineno, line)) in lines.enumerate() {
            let t: Vec<&str> = line.split_whitespace().collect();
            let fold = i / (2 * per_fold);
            let pair = match t[..] {
                [name, i1, i2] => image_name(name, i1)
                    .zip(image_name(name, i2))
                    .map(|(a, b)| Pair {
                        fold,
                        a,
                        b,
                        genuine: true,
                    }),
                [n1, i1, n2, i2] => image_name(n1, i1)
                    .zip(image_name(n2, i2))
                    .map(|(a, b)| Pair {
                        fold,
                        a,
                        b,
                        genuine: false,
                    }),
                _ => None,
            }
            .ok_or_else(|| {
                bad(
                    lineno + 1,
                    format!("expected 'name i j' or 'name1 i name2 j', got {line:?}"),
                )
            })?;
            let expect_genuine = (i % (2 * per_fold)) < per_fold;
            if pair.genuine != expect_genuine {
                return Err(bad(
                    lineno + 1,
                    "pair type out of the per-fold order".into(),
                ));
            }
            pairs.push(pair);
        }
        if pairs.len() != folds * per_fold * 2 {
            return Err(bad(
                0,
                format!(
                    "expected {} pairs, found {}",
                    folds * per_fold * 2,
                    pairs.len()
                ),
            ));
        }
        Ok(LfwProtocol {
            root: root.to_path_buf(),
            folds,
            per_fold,
            pairs,
        })
    }

    /// Every distinct image the protocol uses, sorted.
    pub fn images(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .pairs
            .iter()
            .flat_map(|p| [p.a.clone(), p.b.clone()])
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

pub use super::extract::Extracted;

/// Extract every image of the protocol (in parallel batches), calling `progress(done, total)`.
pub fn extract_all(
    engine: &FaceEngine,
    protocol: &LfwProtocol,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> BTreeMap<String, Extracted> {
    extract_all_cached(engine, protocol, None, progress)
}

/// [`extract_all`] through a template cache.
pub fn extract_all_cached(
    engine: &FaceEngine,
    protocol: &LfwProtocol,
    cache: Option<&TemplateCache>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> BTreeMap<String, Extracted> {
    extract_files(
        engine,
        &protocol.root.join("images"),
        &protocol.images(),
        cache,
        progress,
    )
}

/// Score of each pair (cosine), or None when either image failed.
pub fn score_pairs(
    protocol: &LfwProtocol,
    extracted: &BTreeMap<String, Extracted>,
) -> Vec<Option<f32>> {
    protocol
        .pairs
        .iter()
        .map(|p| match (extracted.get(&p.a), extracted.get(&p.b)) {
            (Some(Extracted::Vector(a)), Some(Extracted::Vector(b))) => {
                crate::template::cosine(a, b).ok()
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_small_pairs_file_and_rejects_bad_lines() {
        let dir = std::env::temp_dir().join(format!("lfw-proto-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("pairs.txt"),
            "2 1\nA 1 2\nA 1 B 3\nC 2 4\nC 1 D 1\n",
        )
        .unwrap();
        let p = LfwProtocol::load(&dir).unwrap();
        assert_eq!((p.folds, p.per_fold, p.pairs.len()), (2, 1, 4));
        assert_eq!(
            p.pairs[1],
            Pair {
                fold: 0,
                a: "A/A_0001.jpg".into(),
                b: "B/B_0003.jpg".into(),
                genuine: false
            }
        );
        assert_eq!(p.pairs[2].fold, 1);
        assert_eq!(p.images().len(), 7);
        std::fs::write(dir.join("pairs.txt"), "2 1\nA 1 2\nA x B 3\n").unwrap();
        assert!(LfwProtocol::load(&dir).is_err());
        std::fs::write(dir.join("pairs.txt"), "2 1\nA 1 2\n").unwrap();
        assert!(LfwProtocol::load(&dir).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// Results of the LFW protocol.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LfwReport {
    /// Detector, embedder model ids.
    pub models: Vec<String>,
    /// Folds × pairs per class per fold.
    pub folds: usize,
    /// Pairs per class per fold.
    pub per_fold: usize,
    /// Total pairs.
    pub pairs: usize,
    /// Distinct images.
    pub images: usize,
    /// Images without a template, with the reason.
    pub failed_images: Vec<(String, String)>,
    /// Pairs scored as a rejection because an image failed.
    pub failed_pairs: usize,
    /// k-fold accuracy (threshold chosen on the other folds).
    pub accuracy_mean: f64,
    /// Standard deviation of the fold accuracies.
    pub accuracy_std: f64,
    /// Per-fold thresholds and test accuracies.
    pub fold_thresholds: Vec<f64>,
    /// Per-fold accuracies.
    pub fold_accuracies: Vec<f64>,
    /// Equal error rate over all pairs.
    pub eer: f64,
    /// Threshold at the EER.
    pub eer_threshold: f64,
    /// True accept rate at FAR = 1e-3 (1 − FNMR).
    pub tar_at_far_1e3: f64,
    /// The cosine threshold giving FAR ≤ 1e-3 on these impostor pairs.
    pub threshold_far_1e3: f64,
    /// Impostor comparisons behind the FAR = 1e-3 figure.
    pub impostor_pairs: usize,
    /// Mean genuine score.
    pub genuine_mean: f64,
    /// Mean impostor score.
    pub impostor_mean: f64,
    /// Seconds spent extracting templates (or reading them from the cache).
    pub extract_seconds: f64,
    /// Template cache use, when a cache was given.
    pub cache: Option<super::cache::CacheStats>,
    /// Every pair's score with subject labels (identity of the first image), for reports.
    #[serde(skip)]
    pub scores: sinhtrac_eval::ScoreSet,
    /// The k-fold details.
    #[serde(skip)]
    pub kfold: sinhtrac_eval::KFoldAccuracy,
}

/// Score a failed pair as a certain rejection, so failures count against accuracy instead of vanishing.
const FAILED_SCORE: f64 = -1.0;

/// Run the whole protocol: extract, score, and compute the metrics.
pub fn evaluate(
    engine: &FaceEngine,
    protocol: &LfwProtocol,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<LfwReport, sinhtrac_eval::EvalError> {
    evaluate_cached(engine, protocol, None, progress)
}

/// [`evaluate`] with templates read from (and added to) a cache.
pub fn evaluate_cached(
    engine: &FaceEngine,
    protocol: &LfwProtocol,
    cache: Option<&TemplateCache>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<LfwReport, sinhtrac_eval::EvalError> {
    let started = std::time::Instant::now();
    let extracted = extract_all_cached(engine, protocol, cache, progress);
    let extract_seconds = started.elapsed().as_secs_f64();
    let scores = score_pairs(protocol, &extracted);
    let failed_images: Vec<(String, String)> = extracted
        .iter()
        .filter_map(|(n, e)| match e {
            Extracted::Failed(reason, _) => Some((n.clone(), reason.clone())),
            Extracted::Vector(_) => None,
        })
        .collect();
    let mut folds = vec![sinhtrac_eval::ScoreSet::new(Vec::new(), Vec::new()); protocol.folds];
    let mut all = sinhtrac_eval::ScoreSet::new(Vec::new(), Vec::new());
    let mut subject_ids: BTreeMap<&str, u32> = BTreeMap::new();
    let (mut genuine_subjects, mut impostor_subjects) = (Vec::new(), Vec::new());
    for (pair, score) in protocol.pairs.iter().zip(&scores) {
        let s = score.map(f64::from).unwrap_or(FAILED_SCORE);
        let identity = pair.a.split('/').next().unwrap_or(&pair.a);
        let next = subject_ids.len() as u32;
        let subject = *subject_ids.entry(identity).or_insert(next);
        let (fold, total) = (&mut folds[pair.fold], &mut all);
        if pair.genuine {
            fold.genuine.push(s);
            total.genuine.push(s);
            genuine_subjects.push(subject);
        } else {
            fold.impostor.push(s);
            total.impostor.push(s);
            impostor_subjects.push(subject);
        }
    }
    let all = all.with_subjects(genuine_subjects, impostor_subjects)?;
    let kfold = sinhtrac_eval::kfold_accuracy(&folds)?;
    let rates = all.rates()?;
    let eer = rates.eer();
    let at_1e3 = rates.fnmr_at_fmr(1e-3)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(LfwReport {
        models: vec![
            engine.detector.model_id().to_string(),
            engine.embedder.model_id().to_string(),
        ],
        folds: protocol.folds,
        per_fold: protocol.per_fold,
        pairs: protocol.pairs.len(),
        images: extracted.len(),
        failed_pairs: scores.iter().filter(|s| s.is_none()).count(),
        failed_images,
        accuracy_mean: kfold.mean,
        accuracy_std: kfold.std,
        fold_thresholds: kfold.folds.iter().map(|f| f.threshold).collect(),
        fold_accuracies: kfold.folds.iter().map(|f| f.test_accuracy).collect(),
        eer: eer.eer,
        eer_threshold: eer.threshold,
        tar_at_far_1e3: 1.0 - at_1e3.fnmr,
        threshold_far_1e3: at_1e3.at.threshold,
        impostor_pairs: all.impostor.len(),
        genuine_mean: mean(&all.genuine),
        impostor_mean: mean(&all.impostor),
        extract_seconds,
        cache: cache.map(TemplateCache::stats),
        scores: all,
        kfold,
    })
}

/// Every cross-identity comparison among the extracted images (identity = the folder name): the large
/// impostor set used for calibration (7,701 LFW images give about 29.6 million pairs, enough to state
/// thresholds down to FMR 1e-7 by the rule of 3). Failed images are skipped.
pub fn all_impostor_scores(extracted: &BTreeMap<String, Extracted>) -> Vec<f64> {
    let items: Vec<(&str, &[f32])> = extracted
        .iter()
        .filter_map(|(name, e)| match e {
            Extracted::Vector(v) => Some((name.split('/').next().unwrap_or(name), v.as_slice())),
            Extracted::Failed(..) => None,
        })
        .collect();
    // The index's run-time dispatched SIMD dot product (AVX2+FMA here, scalar elsewhere).
    let dot = sinhtrac_index::simd::kernels().dot_f32;
    items
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, (id_a, a))| {
            items[i + 1..]
                .iter()
                .filter(move |(id_b, _)| id_b != id_a)
                .map(move |(_, b)| dot(a, b) as f64)
        })
        .collect()
}
