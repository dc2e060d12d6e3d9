//! An open-set 1:N identification protocol built from an LFW-style folder (`images/<Name>/<files>`).
//!
//! **Construction (deterministic).** Identities are the sub-folders of `images/`, in byte order of
//! their names; an identity's images are its image files (`jpg`, `jpeg`, `png`, `bmp`, `tif`, `tiff`,
//! `webp`) in byte order of their file names. Then:
//! - an identity with **two or more** images is *enrolled* with its first image; each of its other
//!   images is a *mated* search (its mate is in the gallery);
//! - an identity with **exactly one** image is never enrolled; that image is a *non-mated* search.
//!
//! On the 7,701 LFW View-2 images of 4,281 people kept in `../shared/datasets/lfw` this gives a gallery
//! of **1,559** identities, **3,420** mated searches and **2,722** non-mated searches. Optionally only the
//! first `n` identities (in that order) are used, for fast tests.
//!
//! **Scoring.** Every template is searched against the whole gallery with the engine's own exact f32
//! SIMD flat index ([`sinhtrac_index::FlatIndex`], cosine similarity); the top `cmc_depth` candidates of
//! each search are kept. Metrics follow NIST FRTE 1:N ([`sinhtrac_eval::openset`]): FNIR at FPIR with rank
//! R = 1 (identification mode), rank-k identification rates and the CMC.
//!
//! **Failures are not dropped.** A mated search whose image gives no template, or whose identity failed
//! to enrol (no template from the enrolment image), is a search whose mate is never returned: a miss at
//! every rank and threshold. A non-mated search without a template returns no candidate (it cannot
//! raise a false alarm) and is still counted in the FPIR denominator. All failures are counted in the
//! report.
//!
//! **Support.** FNIR at FPIR = `p` is reported when the non-mated searches support `p` under the rule of
//! 3 (n·p ≥ 3). LFW's 2,722 non-mated searches support FPIR = 1e-2 but not 1e-3 (which needs 3,000);
//! for such targets an *indicative* figure under n·p ≥ 1 is given separately and labelled as such.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sinhtrac_eval::{
    wilson_interval, Candidate, ConfidenceInterval, FnirAtFpir, OpenSet, OpenSetResult, Search,
    SupportRule,
};
use sinhtrac_index::{Codec, FlatConfig, FlatIndex, SearchParams, Tag};

use super::cache::{CacheStats, TemplateCache};
use super::extract::{extract_files, Extracted};
use super::lfw::ProtocolError;
use super::RunError;
use crate::face::FaceEngine;

/// Image file extensions the protocol takes (lower case).
const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

/// One image of the protocol: identity and path relative to the images folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sample {
    /// Identity (folder name).
    pub identity: String,
    /// `<identity>/<file>`.
    pub image: String,
}

/// The open-set protocol: who is enrolled with what, and which searches are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSetProtocol {
    /// The images folder.
    pub images_dir: PathBuf,
    /// Identities considered (after any limit).
    pub identities: usize,
    /// One enrolment image per enrolled identity, in identity order.
    pub enrolled: Vec<Sample>,
    /// Mated searches (identity enrolled with another image).
    pub mated: Vec<Sample>,
    /// Non-mated searches (identity never enrolled).
    pub nonmated: Vec<Sample>,
}

fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, ProtocolError> {
    let io = |source| ProtocolError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        // Non-UTF-8 names cannot be written into reports faithfully; they are skipped.
        if let Ok(name) = entry.file_name().into_string() {
            if !name.starts_with('.') {
                out.push((name, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn is_image(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

impl OpenSetProtocol {
    /// Build the protocol from `<root>/images` (or `root` itself when it has no `images` folder),
    /// using the first `max_identities` identities when given.
    pub fn build(root: &Path, max_identities: Option<usize>) -> Result<Self, ProtocolError> {
        let images_dir = if root.join("images").is_dir() {
            root.join("images")
        } else {
            root.to_path_buf()
        };
        let mut protocol = OpenSetProtocol {
            images_dir: images_dir.clone(),
            identities: 0,
            enrolled: Vec::new(),
            mated: Vec::new(),
            nonmated: Vec::new(),
        };
        for (identity, path) in sorted_entries(&images_dir)? {
            if max_identities.is_some_and(|m| protocol.identities >= m) {
                break;
            }
            if !path.is_dir() {
                continue;
            }
            let files: Vec<String> = sorted_entries(&path)?
                .into_iter()
                .filter(|(name, p)| is_image(name) && p.is_file())
                .map(|(name, _)| format!("{identity}/{name}"))
                .collect();
            let sample = |image: String| Sample {
                identity: identity.clone(),
                image,
            };
            match files.len() {
                0 => continue,
                1 => protocol.nonmated.extend(files.into_iter().map(sample)),
                _ => {
                    let mut it = files.into_iter();
                    protocol.enrolled.extend(it.next().map(sample));
                    protocol.mated.extend(it.map(sample));
                }
            }
            protocol.identities += 1;
        }
        if protocol.enrolled.is_empty() {
            return Err(ProtocolError::Malformed {
                path: images_dir,
                line: 0,
                detail: "no identity has two or more images: nothing to enrol".into(),
            });
        }
        Ok(protocol)
    }

    /// Every image the protocol uses, sorted.
    pub fn images(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .enrolled
            .iter()
            .chain(&self.mated)
            .chain(&self.nonmated)
            .map(|s| s.image.clone())
            .collect();
        v.sort();
        v
    }
}

/// Settings of the evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSetOptions {
    /// Candidates kept per search (CMC depth).
    pub cmc_depth: usize,
    /// Target FPIRs for FNIR @ FPIR.
    pub fpir_targets: Vec<f64>,
}

impl Default for OpenSetOptions {
    fn default() -> Self {
        OpenSetOptions {
            cmc_depth: 20,
            fpir_targets: sinhtrac_eval::report::DEFAULT_FPIR_TARGETS.to_vec(),
        }
    }
}

/// An image without a template.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Failure {
    /// Image (relative to the images folder).
    pub image: String,
    /// Its role: "enrolment", "mated" or "non-mated".
    pub role: &'static str,
    /// Reason code.
    pub reason: String,
}

/// A count with its 95% Wilson interval (searches taken as independent trials).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rate {
    /// Successes (or errors) counted.
    pub count: usize,
    /// Trials.
    pub of: usize,
    /// The interval (its estimate is `count / of`).
    pub ci: ConfidenceInterval,
}

impl Rate {
    fn new(count: usize, of: usize) -> Result<Self, RunError> {
        Ok(Rate {
            count,
            of,
            ci: wilson_interval(count as u64, of as u64, 0.95)?,
        })
    }
}

/// FNIR at a target FPIR with counts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FnirPoint {
    /// The metric (threshold, observed FPIR, FNIR).
    pub at: FnirAtFpir,
    /// Mated searches missed at that threshold (of all mated searches), with interval.
    pub misses: Rate,
    /// Non-mated searches raising a candidate at that threshold.
    pub false_positives: usize,
    /// Support rule the figure was computed under (n·FPIR ≥ this).
    pub min_expected_false_positives: f64,
}

/// Results of the 1:N protocol.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenSetReport {
    /// Detector, embedder model ids.
    pub models: Vec<String>,
    /// Identities in the protocol.
    pub identities: usize,
    /// Identities enrolled (one image each) by the protocol.
    pub enrolled: usize,
    /// Of those, identities whose enrolment image gave a template (the gallery size).
    pub gallery: usize,
    /// Mated searches.
    pub mated_searches: usize,
    /// Non-mated searches.
    pub nonmated_searches: usize,
    /// Images without a template, with their role and reason.
    pub failures: Vec<Failure>,
    /// Mated searches that are misses because their identity failed to enrol.
    pub mated_without_gallery_mate: usize,
    /// Rank-1 identification rate: hits of all mated searches.
    pub rank1: Rate,
    /// Rank-10 identification rate.
    pub rank10: Rate,
    /// FNIR (R = 1) at each supported target FPIR (rule of 3).
    pub fnir_at_fpir: Vec<FnirPoint>,
    /// Targets the rule of 3 does not support, with an indicative figure under n·FPIR ≥ 1 where that
    /// holds (read as an order of magnitude, not as a measured rate).
    pub indicative_fnir_at_fpir: Vec<FnirPoint>,
    /// Targets not supported even under n·FPIR ≥ 1.
    pub unsupported_fpir: Vec<f64>,
    /// The full metric set (CMC, FNIR-FPIR curve) as in reports.
    pub result: OpenSetResult,
    /// Mean cosine of the mate (over mated searches whose mate is returned).
    pub mate_score_mean: f64,
    /// Mean top score of non-mated searches with a template.
    pub nonmated_top_mean: f64,
    /// Seconds spent extracting templates (or reading them from the cache).
    pub extract_seconds: f64,
    /// Seconds spent searching (index build + all searches).
    pub search_seconds: f64,
    /// Template cache use, when a cache was given.
    pub cache: Option<CacheStats>,
}

/// Run the protocol: extract (through the cache), enrol, search, and compute the metrics.
pub fn evaluate(
    engine: &FaceEngine,
    protocol: &OpenSetProtocol,
    options: &OpenSetOptions,
    cache: Option<&TemplateCache>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<OpenSetReport, RunError> {
    let started = std::time::Instant::now();
    let extracted = extract_files(
        engine,
        &protocol.images_dir,
        &protocol.images(),
        cache,
        progress,
    );
    let extract_seconds = started.elapsed().as_secs_f64();
    let mut report = score(protocol, &extracted, options)?;
    report.models = vec![
        engine.detector.model_id().to_string(),
        engine.embedder.model_id().to_string(),
    ];
    report.extract_seconds = extract_seconds;
    report.cache = cache.map(TemplateCache::stats);
    Ok(report)
}

/// Enrol, search and compute the metrics from already extracted templates (keyed by image).
pub fn score(
    protocol: &OpenSetProtocol,
    extracted: &BTreeMap<String, Extracted>,
    options: &OpenSetOptions,
) -> Result<OpenSetReport, RunError> {
    let started = std::time::Instant::now();
    let get = |image: &str| extracted.get(image).and_then(Extracted::vector);
    let mut failures = Vec::new();
    let mut note_failure = |s: &Sample, role: &'static str| {
        let reason = match extracted.get(&s.image) {
            Some(Extracted::Failed(reason, _)) => reason.clone(),
            _ => "NOT_EXTRACTED".into(),
        };
        failures.push(Failure {
            image: s.image.clone(),
            role,
            reason,
        });
    };

    // Subject ids: enrolled identities first (their gallery ids), then the non-mated ones, so a
    // non-mated search can never name a gallery subject.
    let mut subject: BTreeMap<&str, u32> = BTreeMap::new();
    for s in protocol.enrolled.iter().chain(&protocol.nonmated) {
        let next = subject.len() as u32;
        subject.entry(s.identity.as_str()).or_insert(next);
    }
    let id_of = |s: &Sample| subject.get(s.identity.as_str()).copied();

    let mut gallery: Option<FlatIndex> = None;
    let mut enrolled_ok = std::collections::BTreeSet::new();
    for s in &protocol.enrolled {
        let Some(v) = get(&s.image) else {
            note_failure(s, "enrolment");
            continue;
        };
        let index = match &mut gallery {
            Some(g) => g,
            None => gallery.insert(FlatIndex::new(FlatConfig::new(v.len(), Codec::F32))?),
        };
        let id =
            id_of(s).ok_or_else(|| RunError::Internal("enrolled identity without id".into()))?;
        index.add(u64::from(id), v, Tag::default())?;
        enrolled_ok.insert(id);
    }
    let gallery = gallery.ok_or_else(|| {
        RunError::Internal("no enrolment image gave a template: the gallery is empty".into())
    })?;

    // Probes with a template are searched in one batch; the others become empty searches.
    let probes: Vec<(&Sample, bool)> = protocol
        .mated
        .iter()
        .map(|s| (s, true))
        .chain(protocol.nonmated.iter().map(|s| (s, false)))
        .collect();
    let mut queries = Vec::new();
    let mut searched = Vec::new();
    for (i, (s, mated)) in probes.iter().enumerate() {
        match get(&s.image) {
            Some(v) if v.len() == gallery.dim() => {
                queries.extend_from_slice(v);
                searched.push(i);
            }
            _ => note_failure(s, if *mated { "mated" } else { "non-mated" }),
        }
    }
    let k = options.cmc_depth.max(1).min(gallery.len());
    let hits = if queries.is_empty() {
        Vec::new()
    } else {
        gallery.search_batch(&queries, k, &SearchParams::default())?
    };
    let mut candidates: Vec<Vec<Candidate>> = vec![Vec::new(); probes.len()];
    for (&i, hits) in searched.iter().zip(hits) {
        candidates[i] = hits
            .into_iter()
            .map(|h| Candidate {
                subject: h.id as u32,
                score: f64::from(h.score),
            })
            .collect();
    }
    let mut searches = Vec::with_capacity(probes.len());
    let mut mated_without_gallery_mate = 0;
    for ((s, mated), c) in probes.iter().zip(candidates) {
        let id = id_of(s).ok_or_else(|| RunError::Internal("probe identity without id".into()))?;
        if *mated && !enrolled_ok.contains(&id) {
            mated_without_gallery_mate += 1;
        }
        searches.push(Search {
            probe_subject: id,
            mated: *mated,
            candidates: c,
        });
    }
    let search_seconds = started.elapsed().as_secs_f64();

    let open = OpenSet::new(&searches)?;
    let result = open.summary(&options.fpir_targets, 1)?;
    let n_mated = result.n_mated;
    let n_nonmated = result.n_nonmated;
    let point = |f: FnirAtFpir, rule: SupportRule| -> Result<FnirPoint, RunError> {
        let misses = (f.fnir * n_mated as f64).round() as usize;
        Ok(FnirPoint {
            misses: Rate::new(misses, n_mated)?,
            false_positives: (f.observed_fpir * n_nonmated as f64).round() as usize,
            min_expected_false_positives: rule.min_expected_errors,
            at: f,
        })
    };
    let fnir_at_fpir = result
        .fnir_at_fpir
        .iter()
        .map(|f| point(*f, SupportRule::RULE_OF_3))
        .collect::<Result<Vec<_>, _>>()?;
    let weak = open.clone().with_support_rule(SupportRule::AT_LEAST_ONE);
    let mut indicative = Vec::new();
    let mut unsupported = Vec::new();
    for &t in &result.unsupported_fpir {
        match weak.fnir_at_fpir(t, 1) {
            Ok(f) => indicative.push(point(f, SupportRule::AT_LEAST_ONE)?),
            Err(sinhtrac_eval::EvalError::Unsupported { .. }) => unsupported.push(t),
            Err(sinhtrac_eval::EvalError::Empty { .. }) => unsupported.push(t),
            Err(e) => return Err(e.into()),
        }
    }
    let hits_at = |k: usize| (open.rank_rate(k) * n_mated as f64).round() as usize;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mate_scores: Vec<f64> = searches
        .iter()
        .filter(|s| s.mated)
        .filter_map(|s| {
            s.candidates
                .iter()
                .find(|c| c.subject == s.probe_subject)
                .map(|c| c.score)
        })
        .collect();
    let nonmated_tops: Vec<f64> = searches
        .iter()
        .filter(|s| !s.mated)
        .filter_map(|s| s.candidates.first().map(|c| c.score))
        .collect();
    Ok(OpenSetReport {
        models: Vec::new(),
        identities: protocol.identities,
        enrolled: protocol.enrolled.len(),
        gallery: gallery.len(),
        mated_searches: protocol.mated.len(),
        nonmated_searches: protocol.nonmated.len(),
        failures,
        mated_without_gallery_mate,
        rank1: Rate::new(hits_at(1), n_mated)?,
        rank10: Rate::new(hits_at(10), n_mated)?,
        fnir_at_fpir,
        indicative_fnir_at_fpir: indicative,
        unsupported_fpir: unsupported,
        result,
        mate_score_mean: mean(&mate_scores),
        nonmated_top_mean: mean(&nonmated_tops),
        extract_seconds: 0.0,
        search_seconds,
        cache: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder layout: A has 3 images, B 1, C 2, D 1, E none, plus noise (a text file, a hidden file,
    /// a stray file at the top level).
    fn layout(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("sinhtrac-1n-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let img = root.join("images");
        for (who, files) in [
            ("A", &["A_0002.jpg", "A_0001.jpg", "A_0010.png"][..]),
            ("B", &["B_0001.jpg"][..]),
            ("C", &["C_0003.jpg", "C_0001.JPG"][..]),
            ("D", &["D_0001.jpg", "notes.txt", ".hidden.jpg"][..]),
            ("E", &[][..]),
        ] {
            std::fs::create_dir_all(img.join(who)).unwrap();
            for f in files {
                std::fs::write(img.join(who).join(f), b"x").unwrap();
            }
        }
        std::fs::write(img.join("stray.jpg"), b"x").unwrap();
        root
    }

    fn names(v: &[Sample]) -> Vec<&str> {
        v.iter().map(|s| s.image.as_str()).collect()
    }

    #[test]
    fn builds_the_protocol_deterministically() {
        let root = layout("build");
        let p = OpenSetProtocol::build(&root, None).unwrap();
        assert_eq!(p.identities, 4); // E has no image
        assert_eq!(names(&p.enrolled), ["A/A_0001.jpg", "C/C_0001.JPG"]);
        assert_eq!(
            names(&p.mated),
            ["A/A_0002.jpg", "A/A_0010.png", "C/C_0003.jpg"]
        );
        assert_eq!(names(&p.nonmated), ["B/B_0001.jpg", "D/D_0001.jpg"]);
        assert_eq!(p.images().len(), 7);
        // Same result from the images folder itself, and twice in a row.
        assert_eq!(
            OpenSetProtocol::build(&root.join("images"), None).unwrap(),
            p
        );
        // A limit keeps the first identities in order.
        let p2 = OpenSetProtocol::build(&root, Some(2)).unwrap();
        assert_eq!(p2.identities, 2);
        assert_eq!(names(&p2.enrolled), ["A/A_0001.jpg"]);
        assert_eq!(names(&p2.nonmated), ["B/B_0001.jpg"]);
        // Nothing to enrol is an error, as is a missing folder.
        assert!(OpenSetProtocol::build(&root, Some(1)).is_ok());
        let only_b = root.join("images/B");
        assert!(OpenSetProtocol::build(&only_b, None).is_err());
        assert!(OpenSetProtocol::build(&root.join("missing"), None).is_err());
        std::fs::remove_dir_all(&root).ok();
    }

    fn unit(angle: f32) -> Vec<f32> {
        vec![angle.cos(), angle.sin(), 0.0]
    }

    #[test]
    fn scores_with_failures_counted_as_misses() {
        let root = layout("score");
        let p = OpenSetProtocol::build(&root, None).unwrap();
        let mut ex = BTreeMap::new();
        let v = |a: f32| Extracted::Vector(unit(a));
        ex.insert("A/A_0001.jpg".to_string(), v(0.0));
        ex.insert("A/A_0002.jpg".to_string(), v(0.1)); // mate at rank 1
        ex.insert(
            "A/A_0010.png".to_string(),
            Extracted::Failed("NO_FACE".into(), "no face".into()),
        ); // mated failure: miss
        ex.insert("C/C_0001.JPG".to_string(), v(1.5));
        ex.insert("C/C_0003.jpg".to_string(), v(0.2)); // nearer A than C: rank 2
        ex.insert("B/B_0001.jpg".to_string(), v(0.7)); // non-mated
        ex.insert(
            "D/D_0001.jpg".to_string(),
            Extracted::Failed("NO_FACE".into(), "no face".into()),
        );
        let opts = OpenSetOptions {
            cmc_depth: 5,
            fpir_targets: vec![0.5],
        };
        let r = score(&p, &ex, &opts).unwrap();
        assert_eq!(
            (r.gallery, r.mated_searches, r.nonmated_searches),
            (2, 3, 2)
        );
        assert_eq!((r.rank1.count, r.rank1.of), (1, 3));
        assert_eq!(r.rank10.count, 2);
        assert_eq!(r.result.cmc.len(), 2);
        assert_eq!(r.failures.len(), 2);
        assert_eq!(r.failures[0].role, "mated");
        assert_eq!(r.failures[1].role, "non-mated");
        // 2 non-mated searches (one without a template): FPIR 0.5 is unsupported under the rule of 3
        // (needs 6) and under n·p ≥ 1 is met by letting B's top score through.
        assert!(r.fnir_at_fpir.is_empty());
        assert_eq!(r.indicative_fnir_at_fpir.len(), 1);
        let ind = &r.indicative_fnir_at_fpir[0];
        assert_eq!(ind.false_positives, 1);
        // B's top score is cos(0.7) (A at angle 0 is nearer than C at 1.5); any threshold up to it
        // lets exactly that one through.
        assert!(ind.at.threshold <= f64::from(0.7f32.cos()));
        // At rank 1 only A_0002 is a hit: FNIR 2/3.
        assert_eq!(ind.misses.count, 2);
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn failed_enrolment_makes_the_identity_s_searches_misses() {
        let root = layout("enrol");
        let p = OpenSetProtocol::build(&root, None).unwrap();
        let mut ex = BTreeMap::new();
        let v = |a: f32| Extracted::Vector(unit(a));
        ex.insert(
            "A/A_0001.jpg".to_string(),
            Extracted::Failed("NO_FACE".into(), "-".into()),
        );
        ex.insert("A/A_0002.jpg".to_string(), v(0.0));
        ex.insert("A/A_0010.png".to_string(), v(0.0));
        ex.insert("C/C_0001.JPG".to_string(), v(1.0));
        ex.insert("C/C_0003.jpg".to_string(), v(1.0));
        ex.insert("B/B_0001.jpg".to_string(), v(2.0));
        ex.insert("D/D_0001.jpg".to_string(), v(3.0));
        let r = score(&p, &ex, &OpenSetOptions::default()).unwrap();
        assert_eq!((r.gallery, r.mated_without_gallery_mate), (1, 2));
        assert_eq!((r.rank1.count, r.rank1.of), (1, 3));
        assert_eq!(r.failures[0].role, "enrolment");
        // An empty gallery is an error, not a panic.
        let none: BTreeMap<String, Extracted> = BTreeMap::new();
        assert!(score(&p, &none, &OpenSetOptions::default()).is_err());
        std::fs::remove_dir_all(&root).ok();
    }
}
