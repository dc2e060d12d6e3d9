//! A chimeric face + fingerprint protocol: each FVC finger is paired with an LFW identity, so that
//! two-modality comparisons can be scored without a true multimodal database.
//!
//! **Subjects.** Every FVC finger (`NNN`) of the given databases with at least `impressions`
//! impressions (the 5 shared B sets: 50 fingers × 8) is one chimeric subject. Face identities are the
//! LFW identities with at least `impressions` images, sorted by name; each uses its first
//! `impressions` images in file order. A **pairing** (seed `s`) shuffles the identities (Fisher–Yates,
//! SplitMix64 seeded with `s`) and gives finger `k` (in database, then finger order) identity `k`:
//! impression `m` of the finger goes with image `m` of the face.
//!
//! **Comparisons.** Genuine: every pair of samples of a subject (50 × 28 = 1,400). Impostor: every
//! pair of samples of two different subjects, face against face and finger against finger
//! (50·49/2 · 64 = 78,400). A face image without a template or a finger that failed to enrol leaves
//! that modality missing in the comparison: the single-modality baselines score it as a certain
//! rejection (face −1, finger 0, as in FVC), the fusion as "no evidence" for that modality.
//!
//! **Cross-validation.** For each seed the subjects are split in two halves (another SplitMix64
//! stream); the normalisation is learned on the comparisons within one half and tested on those
//! within the other, both ways. Thresholds for FNMR @ FMR are set on the test half's impostors (the
//! usual DET point), for every method alike. The independence of face and finger is true by
//! construction here; between the modalities of one real person it is an assumption.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use sinhtrac_eval::fusion::{fit, FittedFusion, Method, ModalityScores};
use sinhtrac_eval::{ScoreSet, SplitMix64};
use sinhtrac_finger::{fvc, Extractor, Matcher};

use super::cache::{CacheStats, TemplateCache};
use super::extract::{extract_files, Extracted};
use super::lfw::ProtocolError;
use super::RunError;
use crate::face::FaceEngine;
use crate::fusion::{FusionModel, Inputs, Provenance};

/// Impressions (and face images) per chimeric subject.
pub const IMPRESSIONS: usize = 8;
/// Target FMRs the report states FNMR at.
pub const REPORT_FMRS: [f64; 2] = [1e-3, 1e-2];
/// Target FMRs the shipped model is calibrated at (when the impostor count supports them).
pub const MODEL_FMRS: [f64; 3] = [1e-2, 1e-3, 1e-4];
/// Seeds of the pairings the report averages over.
pub const DEFAULT_SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

/// A finger of an FVC database.
#[derive(Debug, Clone, Serialize)]
pub struct FingerSubject {
    /// Database folder (relative to the fingerprints root when under it).
    pub database: String,
    /// Finger number.
    pub finger: u32,
    /// Impression files, in impression order.
    pub impressions: Vec<PathBuf>,
}

/// An LFW identity usable as a chimeric face.
#[derive(Debug, Clone, Serialize)]
pub struct FaceIdentity {
    /// Folder name.
    pub name: String,
    /// Images (relative to the images folder), first `impressions` in file order.
    pub images: Vec<String>,
}

/// The subjects available to the protocol.
#[derive(Debug, Clone)]
pub struct ChimericProtocol {
    /// LFW `images/` folder.
    pub images_dir: PathBuf,
    /// Fingers, in database then finger order.
    pub fingers: Vec<FingerSubject>,
    /// Eligible face identities, sorted by name.
    pub faces: Vec<FaceIdentity>,
    /// Samples per subject.
    pub impressions: usize,
}

fn dataset_err(path: &Path, detail: impl Into<String>) -> ProtocolError {
    ProtocolError::Dataset {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// The FVC database folders under `root` (two levels, e.g. `fvc2000/DB1_B`), sorted.
pub fn default_databases(root: &Path) -> Result<Vec<PathBuf>, ProtocolError> {
    let read = |d: &Path| -> Result<Vec<PathBuf>, ProtocolError> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|source| ProtocolError::Io {
                path: d.to_path_buf(),
                source,
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        Ok(v)
    };
    let mut out = Vec::new();
    for top in read(root)? {
        for db in read(&top)? {
            if fvc::list_samples(&db).is_ok_and(|s| !s.is_empty()) {
                out.push(db);
            }
        }
    }
    Ok(out)
}

impl ChimericProtocol {
    /// Subjects from the FVC `databases` and the LFW folder `lfw_root` (with `images/`). Fails when a
    /// database cannot be read or there are fewer eligible face identities than fingers.
    pub fn build(
        lfw_root: &Path,
        databases: &[PathBuf],
        fingerprints_root: &Path,
        impressions: usize,
    ) -> Result<Self, ProtocolError> {
        let mut fingers = Vec::new();
        for db in databases {
            let samples = fvc::list_samples(db).map_err(|e| dataset_err(db, e.to_string()))?;
            let name = db
                .strip_prefix(fingerprints_root)
                .unwrap_or(db)
                .display()
                .to_string();
            let mut by_finger: BTreeMap<u32, Vec<PathBuf>> = BTreeMap::new();
            for s in samples {
                by_finger.entry(s.finger).or_default().push(s.path);
            }
            for (finger, paths) in by_finger {
                if paths.len() >= impressions {
                    fingers.push(FingerSubject {
                        database: name.clone(),
                        finger,
                        impressions: paths.into_iter().take(impressions).collect(),
                    });
                }
            }
        }
        if fingers.len() < 2 {
            return Err(dataset_err(
                fingerprints_root,
                format!(
                    "{} fingers with {impressions} impressions; need 2",
                    fingers.len()
                ),
            ));
        }
        let images_dir = lfw_root.join("images");
        let mut faces = Vec::new();
        for name in sorted_names(&images_dir, Entries::Folders)? {
            let mut files: Vec<String> = sorted_names(&images_dir.join(&name), Entries::Files)?
                .into_iter()
                .map(|f| format!("{name}/{f}"))
                .collect();
            if files.len() >= impressions {
                files.truncate(impressions);
                faces.push(FaceIdentity {
                    name,
                    images: files,
                });
            }
        }
        if faces.len() < fingers.len() {
            return Err(dataset_err(
                &images_dir,
                format!(
                    "{} identities with ≥ {impressions} images for {} fingers",
                    faces.len(),
                    fingers.len()
                ),
            ));
        }
        Ok(ChimericProtocol {
            images_dir,
            fingers,
            faces,
            impressions,
        })
    }

    /// Number of chimeric subjects (= fingers).
    pub fn subjects(&self) -> usize {
        self.fingers.len()
    }

    /// The face identity (index into `faces`) of each finger for pairing `seed`.
    pub fn pairing(&self, seed: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.faces.len()).collect();
        shuffle(&mut order, seed);
        order.truncate(self.fingers.len());
        order
    }

    /// The two halves of the subjects for the cross-validation of pairing `seed`.
    pub fn halves(&self, seed: u64) -> [Vec<usize>; 2] {
        let mut s: Vec<usize> = (0..self.subjects()).collect();
        shuffle(&mut s, seed ^ 0x5EED_CAFE_F00D_D00D);
        let b = s.split_off(s.len() / 2);
        let (mut a, mut b) = (s, b);
        a.sort_unstable();
        b.sort_unstable();
        [a, b]
    }
}

/// Which entries of a folder [`sorted_names`] lists.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Entries {
    Folders,
    Files,
}

/// The names of `dir`'s sub-folders or files, sorted.
pub(crate) fn sorted_names(dir: &Path, which: Entries) -> Result<Vec<String>, ProtocolError> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| ProtocolError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .flatten()
        .filter(|e| match which {
            Entries::Folders => e.path().is_dir(),
            Entries::Files => e.path().is_file(),
        })
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    v.sort();
    Ok(v)
}

fn shuffle(v: &mut [usize], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// Every score the protocol can ask for: fingerprint scores between every two finger samples, face
/// templates of the identities used.
#[derive(Debug, Clone)]
pub struct ChimericScores {
    /// Finger samples (subjects × impressions); `finger[a * n + b]` for samples `a < b`.
    n: usize,
    finger: Vec<Option<f32>>,
    faces: BTreeMap<String, Extracted>,
    /// Finger samples that failed to enrol (file, reason).
    pub finger_failures: Vec<(String, String)>,
    /// Face images without a template (image, reason).
    pub face_failures: Vec<(String, String)>,
    /// Fingerprint extractor used.
    pub finger_extractor: String,
    /// Face embedder model id and sha256.
    pub face_model: (String, String),
    /// Seconds extracting faces (or reading them from the cache), fingers, and matching fingers.
    pub seconds: [f64; 3],
    /// Template cache use.
    pub cache: Option<CacheStats>,
}

impl ChimericScores {
    /// Extract and match everything the pairings of `seeds` need.
    pub fn compute(
        protocol: &ChimericProtocol,
        engine: &FaceEngine,
        extractor: &dyn Extractor,
        dpi: u16,
        seeds: &[u64],
        cache: Option<&TemplateCache>,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Self, RunError> {
        let t0 = std::time::Instant::now();
        let mut used: Vec<usize> = seeds.iter().flat_map(|&s| protocol.pairing(s)).collect();
        used.sort_unstable();
        used.dedup();
        let names: Vec<String> = used
            .iter()
            .flat_map(|&i| protocol.faces[i].images.iter().cloned())
            .collect();
        let faces = extract_files(engine, &protocol.images_dir, &names, cache, progress);
        let face_seconds = t0.elapsed().as_secs_f64();
        let face_failures = faces
            .iter()
            .filter_map(|(n, e)| match e {
                Extracted::Failed(reason, _) => Some((n.clone(), reason.clone())),
                Extracted::Vector(_) => None,
            })
            .collect();

        let t1 = std::time::Instant::now();
        let paths: Vec<&PathBuf> = protocol
            .fingers
            .iter()
            .flat_map(|f| f.impressions.iter())
            .collect();
        let templates: Vec<Result<Matcher, String>> = paths
            .par_iter()
            .map(|p| {
                fvc::extract_file(extractor, p, dpi)
                    .map(|t| Matcher::new(&t))
                    .map_err(|e| e.to_string())
            })
            .collect();
        let finger_seconds = t1.elapsed().as_secs_f64();
        let finger_failures = paths
            .iter()
            .zip(&templates)
            .filter_map(|(p, t)| {
                t.as_ref()
                    .err()
                    .map(|e| (p.display().to_string(), e.clone()))
            })
            .collect();
        let t2 = std::time::Instant::now();
        let n = paths.len();
        let finger: Vec<Option<f32>> = (0..n * n)
            .into_par_iter()
            .map(|k| {
                let (a, b) = (k / n, k % n);
                if a >= b {
                    return None;
                }
                match (&templates[a], &templates[b]) {
                    (Ok(ma), Ok(mb)) => Some(ma.score(mb.probe())),
                    _ => None,
                }
            })
            .collect();
        Ok(ChimericScores {
            n,
            finger,
            faces,
            finger_failures,
            face_failures,
            finger_extractor: extractor.name().to_string(),
            face_model: (
                engine.embedder.model_id().to_string(),
                engine.embedder.model_sha256_hex().to_string(),
            ),
            seconds: [face_seconds, finger_seconds, t2.elapsed().as_secs_f64()],
            cache: cache.map(TemplateCache::stats),
        })
    }

    /// The MCC score of finger samples `a` and `b` (subject × impressions + impression), `None` when
    /// either failed to enrol.
    pub(crate) fn finger_score(&self, a: usize, b: usize) -> Option<f64> {
        let (a, b) = (a.min(b), a.max(b));
        self.finger
            .get(a * self.n + b)
            .copied()
            .flatten()
            .map(f64::from)
    }

    /// The template of a face image (relative to the images folder), when it has one.
    pub(crate) fn face_vector(&self, name: &str) -> Option<&[f32]> {
        self.faces.get(name)?.vector()
    }

    fn face_score(&self, a: &str, b: &str) -> Option<f64> {
        match (self.faces.get(a)?, self.faces.get(b)?) {
            (Extracted::Vector(x), Extracted::Vector(y)) => {
                crate::template::cosine(x, y).ok().map(f64::from)
            }
            _ => None,
        }
    }

    /// Genuine and impostor comparisons among `subjects` under `pairing`.
    pub fn comparisons(
        &self,
        protocol: &ChimericProtocol,
        pairing: &[usize],
        subjects: &[usize],
    ) -> Comparisons {
        let m = protocol.impressions;
        let sample = |s: usize, i: usize| (s * m + i, sample_face(protocol, pairing, s, i));
        let score = |a: (usize, &str), b: (usize, &str)| {
            ModalityScores::new(self.face_score(a.1, b.1), self.finger_score(a.0, b.0))
        };
        let mut genuine = Vec::new();
        let mut impostor = Vec::new();
        for (x, &s) in subjects.iter().enumerate() {
            for i in 0..m {
                for j in i + 1..m {
                    genuine.push(score(sample(s, i), sample(s, j)));
                }
            }
            for &t in &subjects[x + 1..] {
                for i in 0..m {
                    for j in 0..m {
                        impostor.push(score(sample(s, i), sample(t, j)));
                    }
                }
            }
        }
        Comparisons { genuine, impostor }
    }
}

/// The face image of sample `i` of subject `s` under `pairing` ("" when out of range).
pub(crate) fn sample_face<'a>(
    protocol: &'a ChimericProtocol,
    pairing: &[usize],
    s: usize,
    i: usize,
) -> &'a str {
    pairing
        .get(s)
        .and_then(|&f| protocol.faces.get(f))
        .and_then(|f| f.images.get(i))
        .map_or("", String::as_str)
}

/// Two-modality comparisons of a protocol part.
#[derive(Debug, Clone, Default)]
pub struct Comparisons {
    /// Genuine comparisons.
    pub genuine: Vec<ModalityScores>,
    /// Impostor comparisons.
    pub impostor: Vec<ModalityScores>,
}

/// Score of a failed face comparison in the face-only baseline (cosine's minimum: a certain rejection).
const FACE_FAILED: f64 = -1.0;
/// Score of a failed finger comparison in the finger-only baseline (as in FVC).
const FINGER_FAILED: f64 = 0.0;

impl Comparisons {
    /// The face-only score set.
    pub fn face(&self) -> ScoreSet {
        let f = |v: &[ModalityScores]| v.iter().map(|m| m.face.unwrap_or(FACE_FAILED)).collect();
        ScoreSet::new(f(&self.genuine), f(&self.impostor))
    }

    /// The finger-only score set.
    pub fn finger(&self) -> ScoreSet {
        let f = |v: &[ModalityScores]| {
            v.iter()
                .map(|m| m.finger.unwrap_or(FINGER_FAILED))
                .collect()
        };
        ScoreSet::new(f(&self.genuine), f(&self.impostor))
    }
}

/// Metrics of one score set.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Metrics {
    /// FNMR at FMR = 1e-3.
    pub fnmr_at_1e3: f64,
    /// FNMR at FMR = 1e-2.
    pub fnmr_at_1e2: f64,
    /// Equal error rate.
    pub eer: f64,
}

impl Metrics {
    /// Compute on a score set (FMR targets must be supported by its impostors).
    pub fn of(scores: &ScoreSet) -> Result<Self, sinhtrac_eval::EvalError> {
        let r = scores.rates()?;
        Ok(Metrics {
            fnmr_at_1e3: r.fnmr_at_fmr(REPORT_FMRS[0])?.fnmr,
            fnmr_at_1e2: r.fnmr_at_fmr(REPORT_FMRS[1])?.fnmr,
            eer: r.eer().eer,
        })
    }
}

/// Mean and spread of a metric over the folds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Summary {
    pub(crate) fn of(v: &[f64]) -> Self {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Summary {
            mean,
            std: var.sqrt(),
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// One row of the report: a single modality or a fusion method, over every fold.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// "face", "finger" or a [`Method`] name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Per fold (seed-major, then the two directions).
    pub folds: Vec<Metrics>,
    /// FNMR @ FMR = 1e-3 over the folds.
    pub fnmr_at_1e3: Summary,
    /// FNMR @ FMR = 1e-2 over the folds.
    pub fnmr_at_1e2: Summary,
    /// EER over the folds.
    pub eer: Summary,
    /// Face weight learned in each fold (fusion rows).
    pub face_weights: Vec<f64>,
}

impl Row {
    fn new(name: &str, description: &str, folds: Vec<Metrics>, face_weights: Vec<f64>) -> Self {
        let col = |f: fn(&Metrics) -> f64| Summary::of(&folds.iter().map(f).collect::<Vec<_>>());
        Row {
            name: name.into(),
            description: description.into(),
            fnmr_at_1e3: col(|m| m.fnmr_at_1e3),
            fnmr_at_1e2: col(|m| m.fnmr_at_1e2),
            eer: col(|m| m.eer),
            folds,
            face_weights,
        }
    }
}

/// The cross-validated comparison of single modalities and fusion methods.
#[derive(Debug, Clone, Serialize)]
pub struct FusionReport {
    /// Face embedder model id.
    pub face_model: String,
    /// Fingerprint extractor.
    pub finger_extractor: String,
    /// FVC databases used.
    pub databases: Vec<String>,
    /// Chimeric subjects.
    pub subjects: usize,
    /// Samples per subject.
    pub impressions: usize,
    /// LFW identities eligible (≥ `impressions` images).
    pub eligible_faces: usize,
    /// Pairing seeds.
    pub seeds: Vec<u64>,
    /// Folds (2 per seed).
    pub folds: usize,
    /// Genuine comparisons per test half (first fold).
    pub test_genuine: usize,
    /// Impostor comparisons per test half (first fold).
    pub test_impostor: usize,
    /// Genuine and impostor comparisons of the whole set (one pairing).
    pub full_genuine: usize,
    /// Impostor comparisons of the whole set.
    pub full_impostor: usize,
    /// Face images without a template.
    pub face_failures: Vec<(String, String)>,
    /// Finger samples that failed to enrol.
    pub finger_failures: Vec<(String, String)>,
    /// Rows: face, finger, then every fusion method.
    pub rows: Vec<Row>,
    /// The method with the lowest mean FNMR @ FMR = 1e-3 (mean EER breaks ties).
    pub best: Method,
    /// Seconds: face extraction, finger extraction, finger matching, fitting and metrics.
    pub seconds: [f64; 4],
    /// Template cache use.
    pub cache: Option<CacheStats>,
    /// Fused identification (`eval fusion --identify`), when run.
    pub identification: Option<super::chimeric_1n::IdentifyReport>,
}

/// Test metrics and learned face weight share of one method in one fold.
type FoldOutcome = Result<(Metrics, f64), RunError>;

/// Cross-validate every fusion method against the single modalities.
pub fn evaluate(
    protocol: &ChimericProtocol,
    scores: &ChimericScores,
    seeds: &[u64],
) -> Result<FusionReport, RunError> {
    if seeds.is_empty() {
        return Err(RunError::Internal("no pairing seeds".into()));
    }
    let t0 = std::time::Instant::now();
    let mut face = Vec::new();
    let mut finger = Vec::new();
    let mut fused: BTreeMap<Method, (Vec<Metrics>, Vec<f64>)> = BTreeMap::new();
    let mut sizes = (0, 0);
    for &seed in seeds {
        let pairing = protocol.pairing(seed);
        let halves = protocol.halves(seed);
        let parts = [
            scores.comparisons(protocol, &pairing, &halves[0]),
            scores.comparisons(protocol, &pairing, &halves[1]),
        ];
        for (train, test) in [(&parts[0], &parts[1]), (&parts[1], &parts[0])] {
            if sizes == (0, 0) {
                sizes = (test.genuine.len(), test.impostor.len());
            }
            face.push(Metrics::of(&test.face())?);
            finger.push(Metrics::of(&test.finger())?);
            let results: Vec<(Method, FoldOutcome)> = Method::ALL
                .par_iter()
                .map(|&method| {
                    let r = fit(method, &train.genuine, &train.impostor)
                        .and_then(|f| {
                            Metrics::of(&f.fuse_set(&test.genuine, &test.impostor))
                                .map(|m| (m, f.face_weight / (f.face_weight + f.finger_weight)))
                        })
                        .map_err(RunError::from);
                    (method, r)
                })
                .collect();
            for (method, r) in results {
                let (m, w) = r?;
                let e = fused.entry(method).or_default();
                e.0.push(m);
                e.1.push(w);
            }
        }
    }
    let mut rows = vec![
        Row::new("face", "face alone (cosine)", face, Vec::new()),
        Row::new("finger", "finger alone (MCC)", finger, Vec::new()),
    ];
    for method in Method::ALL {
        if let Some((m, w)) = fused.remove(&method) {
            rows.push(Row::new(method.name(), method.describe(), m, w));
        }
    }
    let best = Method::ALL
        .iter()
        .filter_map(|&m| {
            rows.iter()
                .find(|r| r.name == m.name())
                .map(|r| (m, r.fnmr_at_1e3.mean, r.eer.mean))
        })
        .min_by(|a, b| {
            (a.1, a.2)
                .partial_cmp(&(b.1, b.2))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|x| x.0)
        .ok_or_else(|| RunError::Internal("no fusion method evaluated".into()))?;
    let n = protocol.subjects();
    let m = protocol.impressions;
    let mut databases: Vec<String> = protocol
        .fingers
        .iter()
        .map(|f| f.database.clone())
        .collect();
    databases.dedup();
    Ok(FusionReport {
        face_model: scores.face_model.0.clone(),
        finger_extractor: scores.finger_extractor.clone(),
        databases,
        subjects: n,
        impressions: m,
        eligible_faces: protocol.faces.len(),
        seeds: seeds.to_vec(),
        folds: 2 * seeds.len(),
        test_genuine: sizes.0,
        test_impostor: sizes.1,
        full_genuine: n * m * (m - 1) / 2,
        full_impostor: n * (n - 1) / 2 * m * m,
        face_failures: scores.face_failures.clone(),
        finger_failures: scores.finger_failures.clone(),
        rows,
        best,
        seconds: [
            scores.seconds[0],
            scores.seconds[1],
            scores.seconds[2],
            t0.elapsed().as_secs_f64(),
        ],
        cache: scores.cache,
        identification: None,
    })
}

/// The fusion model learned on every subject of pairing `seed`, with thresholds for face + finger,
/// face only, finger only, face + two fingers and two fingers only at [`MODEL_FMRS`] (those the
/// impostor count supports).
pub fn fit_model(
    protocol: &ChimericProtocol,
    scores: &ChimericScores,
    method: Method,
    seed: u64,
    model_id: &str,
) -> Result<FusionModel, RunError> {
    let all: Vec<usize> = (0..protocol.subjects()).collect();
    fit_model_on(protocol, scores, method, seed, &all, model_id)
}

/// [`fit_model`] on the comparisons among `subjects` only (a cross-validation fold's training half).
pub fn fit_model_on(
    protocol: &ChimericProtocol,
    scores: &ChimericScores,
    method: Method,
    seed: u64,
    subjects: &[usize],
    model_id: &str,
) -> Result<FusionModel, RunError> {
    let c = scores.comparisons(protocol, &protocol.pairing(seed), subjects);
    let fitted: FittedFusion = fit(method, &c.genuine, &c.impostor)?;
    let mut databases: Vec<String> = protocol
        .fingers
        .iter()
        .map(|f| f.database.clone())
        .collect();
    databases.dedup();
    let protocol_name = format!(
        "chimeric {} FVC fingers ({}) x LFW identities with >= {} images, pairing seed {seed}, all pairs",
        subjects.len(),
        databases.join(", "),
        protocol.impressions
    );
    let mut model = FusionModel::new(
        model_id,
        &fitted,
        Provenance {
            face_model_id: scores.face_model.0.clone(),
            face_model_sha256: scores.face_model.1.clone(),
            finger_extractor: scores.finger_extractor.clone(),
            finger_matcher: "mcc".into(),
            finger_space_sha256: None,
            protocol: protocol_name.clone(),
            subjects: subjects.len() as u64,
            n_genuine: c.genuine.len() as u64,
            n_impostor: c.impostor.len() as u64,
        },
    );
    let fuse = |m: &FusionModel, x: &ModalityScores, face: bool, finger: bool| -> Option<f64> {
        let f = if face { x.face.map(|s| s as f32) } else { None };
        let p: Vec<f32> = if finger {
            x.finger.map(|s| s as f32).into_iter().collect()
        } else {
            Vec::new()
        };
        // Only comparisons that have every modality of the configuration count.
        if (face && f.is_none()) || (finger && p.is_empty()) {
            return None;
        }
        m.fused_score(f, &p).ok()
    };
    for inputs in Inputs::ONE_FINGER_CONFIGURATIONS {
        let (face, finger) = (inputs.face, inputs.fingers > 0);
        let imp: Vec<f64> = c
            .impostor
            .iter()
            .filter_map(|x| fuse(&model, x, face, finger))
            .collect();
        model
            .calibrate(inputs, &imp, &MODEL_FMRS, &protocol_name)
            .map_err(|e| RunError::Internal(format!("calibrating {inputs}: {e}")))?;
    }
    // Two fingers (a chip ID card holds two): a two-finger impostor comparison is two independent
    // finger impostor comparisons, which is what fusing their LLRs by a sum assumes already. One
    // random pairing of the comparisons leaves the 1e-4 threshold to chance (it rests on ~4 pairs:
    // 5.1–9.1 over 200 pairings), so the calibration pools [`TWO_FINGER_PAIRINGS`] disjoint
    // pairings, which approaches the threshold over all pairs; the fused scores then share
    // comparisons, so the protocol string says the counts overstate the independent evidence.
    // (face, finger) of every impostor comparison with a finger.
    let with_finger: Vec<(Option<f64>, f64)> = c
        .impostor
        .iter()
        .filter_map(|x| Some((x.face, x.finger?)))
        .collect();
    let two_finger_protocol = format!(
        "{protocol_name}; two fingers: {TWO_FINGER_PAIRINGS} seeded random pairings of the {} finger \
         impostor comparisons, each comparison once per pairing, fingers assumed independent; the \
         fused scores share comparisons, so counts and intervals overstate the evidence (about \
         {} independent two-finger comparisons)",
        with_finger.len(),
        with_finger.len() / 2
    );
    // The same pairings serve both configurations.
    let mut pairs = Vec::with_capacity(with_finger.len() / 2 * TWO_FINGER_PAIRINGS as usize);
    for round in 0..TWO_FINGER_PAIRINGS {
        let mut order: Vec<usize> = (0..with_finger.len()).collect();
        shuffle(&mut order, seed ^ TWO_FINGER_SHUFFLE ^ round);
        pairs.extend(
            order
                .chunks_exact(2)
                .map(|p| (with_finger[p[0]], with_finger[p[1]])),
        );
    }
    for inputs in Inputs::TWO_FINGER_CONFIGURATIONS {
        let imp: Vec<f64> = pairs
            .iter()
            .filter_map(|&((face_a, f1), (face_b, f2))| {
                // The face of either comparison stands for the pair's.
                let face = if inputs.face {
                    Some(face_a.or(face_b)? as f32)
                } else {
                    None
                };
                model.fused_score(face, &[f1 as f32, f2 as f32]).ok()
            })
            .collect();
        let dropped = pairs.len() - imp.len();
        if dropped > 0 {
            tracing::warn!(%inputs, dropped, "two-finger pairs without every score were left out");
        }
        // The pooled set is 8× the one-finger set calibrated above, so it supports every target
        // that one did: an error here is a real one.
        model
            .calibrate(inputs, &imp, &MODEL_FMRS, &two_finger_protocol)
            .map_err(|e| RunError::Internal(format!("calibrating {inputs}: {e}")))?;
    }
    Ok(model)
}

/// Seed offset of the two-finger pairings (any constant: it only has to differ from other uses).
const TWO_FINGER_SHUFFLE: u64 = 0x7477_6f66_696e_6772;

/// Disjoint random pairings pooled for the two-finger thresholds.
const TWO_FINGER_PAIRINGS: u64 = 16;
