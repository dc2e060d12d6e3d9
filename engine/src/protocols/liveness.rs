//! A passive-liveness (presentation attack detection) evaluation in ISO/IEC 30107-3 terms.
//!
//! **Presentations.**
//! - *Bona fide*: a deterministic sample of LFW images (all images in identity-then-file byte order,
//!   `n` of the `N` taken at indices ⌊i·N/n⌋, i = 0..n, so the sample spreads over the alphabet and is
//!   the same on every machine), plus every `*_T<digits>.<ext>` file of the PAD samples folder.
//! - *Attacks*: every `*_F<digits>.<ext>` file of the PAD samples folder (species `print-or-screen`: the
//!   minivision samples are printed or on-screen photos, not labelled further), plus the images of an
//!   optional attack folder: each sub-folder is one PAI species (`print/`, `replay/`, `mask/`...), files
//!   directly in it are species `unspecified`.
//!
//! LFW photos are bona fide in the PAD sense (they were taken of live people), but they are press photos
//! of 250×250 px, far from the selfie-camera images these models were trained on: their BPCER is a
//! stress figure, not a deployment figure.
//!
//! **Scoring.** Each image goes through the engine as in production: detect, choose the face, score
//! it with the liveness ensemble (mean probability of "live"); bona fide iff score ≥ threshold. An image
//! where no face is found is *not scored*: such bona fide presentations are listed and also reported as a
//! BPCER that counts them as rejections; such attacks are listed (they would be stopped before any
//! comparison, but say nothing about the PAD models).
//!
//! **Support.** APCER and BPCER come with Wilson intervals. BPCER at APCER = 5 % and 1 % needs at least
//! 60 and 300 attack presentations per species (n·APCER ≥ 3): with the two bundled attack samples they
//! are reported as not supported, with the counts, instead of as numbers.

use std::path::{Path, PathBuf};

use sinhtrac_eval::report::{LivenessReport, DEFAULT_APCER_TARGETS};
use sinhtrac_eval::{wilson_interval, ConfidenceInterval, PadScores, SupportRule};

use super::cache::{CacheStats, TemplateCache};
use super::extract::{liveness_files, LivenessOutcome};
use super::lfw::ProtocolError;
use super::RunError;
use crate::face::FaceEngine;

/// Species of the bundled attack samples.
pub const SAMPLE_SPECIES: &str = "print-or-screen";
/// Species of attack files given without a species folder.
pub const UNSPECIFIED_SPECIES: &str = "unspecified";

const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

/// One presentation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Presentation {
    /// File.
    pub path: PathBuf,
    /// Short name for reports (`Name/Name_0001.jpg`, `minivision_image_F1.jpg`, `print/x.jpg`).
    pub name: String,
    /// PAI species of an attack; None for bona fide.
    pub species: Option<String>,
}

/// Where the presentations come from.
#[derive(Debug, Clone, Default)]
pub struct LivenessSources {
    /// LFW `images/` folder (or the LFW root holding it).
    pub lfw: Option<PathBuf>,
    /// LFW images to sample as bona fide.
    pub lfw_sample: usize,
    /// Folder of `*_T<n>` (bona fide) and `*_F<n>` (attack) samples.
    pub pad_samples: Option<PathBuf>,
    /// Folder of attack images, one sub-folder per PAI species.
    pub attacks: Option<PathBuf>,
}

/// The presentations of the evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivenessProtocol {
    /// Bona fide presentations.
    pub bona_fide: Vec<Presentation>,
    /// Attack presentations.
    pub attacks: Vec<Presentation>,
    /// LFW images available to sample from.
    pub lfw_available: usize,
    /// LFW images taken.
    pub lfw_sampled: usize,
}

fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>, ProtocolError> {
    let io = |source| ProtocolError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let e = e.map_err(io)?;
        if let Ok(name) = e.file_name().into_string() {
            if !name.starts_with('.') {
                out.push((name, e.path()));
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

/// `Some(true)` for `*_T<digits>.ext`, `Some(false)` for `*_F<digits>.ext`, else None.
fn sample_label(name: &str) -> Option<bool> {
    let stem = name.rsplit_once('.')?.0;
    let last = stem.rsplit('_').next()?;
    let (kind, digits) = last.split_at_checked(1)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match kind {
        "T" => Some(true),
        "F" => Some(false),
        _ => None,
    }
}

impl LivenessProtocol {
    /// Gather the presentations.
    pub fn build(src: &LivenessSources) -> Result<Self, ProtocolError> {
        let mut p = LivenessProtocol {
            bona_fide: Vec::new(),
            attacks: Vec::new(),
            lfw_available: 0,
            lfw_sampled: 0,
        };
        if let Some(lfw) = &src.lfw {
            let images = if lfw.join("images").is_dir() {
                lfw.join("images")
            } else {
                lfw.clone()
            };
            let mut all = Vec::new();
            for (who, dir) in list(&images)? {
                if dir.is_dir() {
                    for (name, path) in list(&dir)? {
                        if is_image(&name) && path.is_file() {
                            all.push((format!("{who}/{name}"), path));
                        }
                    }
                }
            }
            let (n_all, n) = (all.len(), src.lfw_sample.min(all.len()));
            for i in 0..n {
                let (name, path) = &all[i * n_all / n];
                p.bona_fide.push(Presentation {
                    path: path.clone(),
                    name: name.clone(),
                    species: None,
                });
            }
            p.lfw_available = n_all;
            p.lfw_sampled = n;
        }
        if let Some(dir) = &src.pad_samples {
            for (name, path) in list(dir)? {
                if !is_image(&name) {
                    continue;
                }
                match sample_label(&name) {
                    Some(true) => p.bona_fide.push(Presentation {
                        path,
                        name,
                        species: None,
                    }),
                    Some(false) => p.attacks.push(Presentation {
                        path,
                        name,
                        species: Some(SAMPLE_SPECIES.into()),
                    }),
                    None => {}
                }
            }
        }
        if let Some(dir) = &src.attacks {
            for (name, path) in list(dir)? {
                if path.is_dir() {
                    for (file, fp) in list(&path)? {
                        if is_image(&file) && fp.is_file() {
                            p.attacks.push(Presentation {
                                path: fp,
                                name: format!("{name}/{file}"),
                                species: Some(name.clone()),
                            });
                        }
                    }
                } else if is_image(&name) {
                    p.attacks.push(Presentation {
                        path,
                        name,
                        species: Some(UNSPECIFIED_SPECIES.into()),
                    });
                }
            }
        }
        Ok(p)
    }
}

/// One presentation's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PresentationScore {
    /// Short name.
    pub name: String,
    /// PAI species (attacks only).
    pub species: Option<String>,
    /// Liveness score, or None when not scored.
    pub score: Option<f32>,
    /// Why not scored.
    pub reason: Option<String>,
}

/// A count with its 95% Wilson interval.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Count {
    /// Errors.
    pub count: usize,
    /// Trials.
    pub of: usize,
    /// Interval (estimate = count / of).
    pub ci: ConfidenceInterval,
}

/// Results of the liveness evaluation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LivenessEvaluation {
    /// Detector and liveness model ids.
    pub models: Vec<String>,
    /// Decision threshold (bona fide iff score ≥ threshold).
    pub threshold: f64,
    /// LFW images available / sampled as bona fide.
    pub lfw_available: usize,
    /// LFW images sampled.
    pub lfw_sampled: usize,
    /// Bona fide presentations (all, scored or not).
    pub bona_fide: Vec<PresentationScore>,
    /// Attack presentations (all, scored or not).
    pub attacks: Vec<PresentationScore>,
    /// Bona fide presentations not scored (no face...).
    pub bona_fide_not_scored: usize,
    /// Attack presentations not scored.
    pub attacks_not_scored: usize,
    /// BPCER counting unscored bona fide presentations as rejections.
    pub bpcer_with_failures: Option<Count>,
    /// APCER, BPCER (with Wilson intervals), BPCER @ APCER over the scored presentations.
    pub report: LivenessReport,
    /// Seconds spent scoring (or reading scores from the cache).
    pub seconds: f64,
    /// Cache use, when a cache was given.
    pub cache: Option<CacheStats>,
}

/// Score every presentation and compute the PAD metrics at `threshold`.
pub fn evaluate(
    engine: &FaceEngine,
    protocol: &LivenessProtocol,
    threshold: f64,
    cache: Option<&TemplateCache>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<LivenessEvaluation, RunError> {
    let started = std::time::Instant::now();
    let paths: Vec<PathBuf> = protocol
        .bona_fide
        .iter()
        .chain(&protocol.attacks)
        .map(|p| p.path.clone())
        .collect();
    let outcomes = liveness_files(engine, &paths, cache, progress);
    let seconds = started.elapsed().as_secs_f64();
    let rows: Vec<PresentationScore> = protocol
        .bona_fide
        .iter()
        .chain(&protocol.attacks)
        .zip(outcomes)
        .map(|(p, o)| {
            let (score, reason) = match o {
                LivenessOutcome::Scored(s) => (Some(s.score), None),
                LivenessOutcome::Failed(reason, _) => (None, Some(reason)),
            };
            PresentationScore {
                name: p.name.clone(),
                species: p.species.clone(),
                score,
                reason,
            }
        })
        .collect();
    let (bona_fide, attacks) = rows.split_at(protocol.bona_fide.len());
    let scored = |v: &[PresentationScore]| -> Vec<f64> {
        v.iter().filter_map(|r| r.score.map(f64::from)).collect()
    };
    let attack_species: Vec<String> = attacks
        .iter()
        .filter(|r| r.score.is_some())
        .map(|r| {
            r.species
                .clone()
                .unwrap_or_else(|| UNSPECIFIED_SPECIES.into())
        })
        .collect();
    let pad = PadScores {
        bona_fide: scored(bona_fide),
        attacks: scored(attacks),
        attack_species: Some(attack_species),
    };
    let report = LivenessReport::compute(
        &pad,
        Some(threshold),
        &DEFAULT_APCER_TARGETS,
        SupportRule::RULE_OF_3,
        40,
    )?;
    let bona_fide_not_scored = bona_fide.iter().filter(|r| r.score.is_none()).count();
    let rejected = pad.bona_fide.iter().filter(|&&s| s < threshold).count();
    let bpcer_with_failures = if bona_fide.is_empty() {
        None
    } else {
        let count = rejected + bona_fide_not_scored;
        Some(Count {
            count,
            of: bona_fide.len(),
            ci: wilson_interval(count as u64, bona_fide.len() as u64, 0.95)?,
        })
    };
    let mut models = vec![engine.detector.model_id().to_string()];
    models.extend(engine.liveness.model_ids());
    Ok(LivenessEvaluation {
        models,
        threshold,
        lfw_available: protocol.lfw_available,
        lfw_sampled: protocol.lfw_sampled,
        bona_fide_not_scored,
        attacks_not_scored: attacks.iter().filter(|r| r.score.is_none()).count(),
        bona_fide: bona_fide.to_vec(),
        attacks: attacks.to_vec(),
        bpcer_with_failures,
        report,
        seconds,
        cache: cache.map(TemplateCache::stats),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_names() {
        assert_eq!(sample_label("minivision_image_T1.jpg"), Some(true));
        assert_eq!(sample_label("minivision_image_F12.png"), Some(false));
        assert_eq!(sample_label("minivision_image_X1.jpg"), None);
        assert_eq!(sample_label("image_F.jpg"), None);
        assert_eq!(sample_label("LICENSE.txt"), None);
        assert_eq!(sample_label("noext"), None);
    }

    #[test]
    fn builds_presentations_deterministically() {
        let root = std::env::temp_dir().join(format!("sinhtrac-live-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let touch = |p: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        };
        for i in 1..=5 {
            touch(&format!("lfw/images/A/A_{i:04}.jpg"));
        }
        for i in 1..=5 {
            touch(&format!("lfw/images/B/B_{i:04}.jpg"));
        }
        touch("pad/x_T1.jpg");
        touch("pad/x_F1.jpg");
        touch("pad/x_F2.jpg");
        touch("pad/LICENSE.txt");
        touch("attacks/replay/r1.png");
        touch("attacks/print/p1.jpg");
        touch("attacks/loose.jpg");
        let src = LivenessSources {
            lfw: Some(root.join("lfw")),
            lfw_sample: 4,
            pad_samples: Some(root.join("pad")),
            attacks: Some(root.join("attacks")),
        };
        let p = LivenessProtocol::build(&src).unwrap();
        let names: Vec<&str> = p.bona_fide.iter().map(|x| x.name.as_str()).collect();
        // 10 images, 4 taken at 0, 2, 5, 7.
        assert_eq!(
            names,
            [
                "A/A_0001.jpg",
                "A/A_0003.jpg",
                "B/B_0001.jpg",
                "B/B_0003.jpg",
                "x_T1.jpg"
            ]
        );
        assert_eq!((p.lfw_available, p.lfw_sampled), (10, 4));
        let attacks: Vec<(&str, &str)> = p
            .attacks
            .iter()
            .map(|x| (x.name.as_str(), x.species.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            attacks,
            [
                ("x_F1.jpg", SAMPLE_SPECIES),
                ("x_F2.jpg", SAMPLE_SPECIES),
                ("loose.jpg", UNSPECIFIED_SPECIES),
                ("print/p1.jpg", "print"),
                ("replay/r1.png", "replay")
            ]
        );
        assert_eq!(LivenessProtocol::build(&src).unwrap(), p);
        // More requested than available: all of them, once.
        let all = LivenessProtocol::build(&LivenessSources {
            lfw_sample: 50,
            ..src.clone()
        })
        .unwrap();
        assert_eq!(all.lfw_sampled, 10);
        let missing = LivenessSources {
            attacks: Some(root.join("nope")),
            ..src
        };
        assert!(LivenessProtocol::build(&missing).is_err());
        std::fs::remove_dir_all(&root).ok();
    }
}
