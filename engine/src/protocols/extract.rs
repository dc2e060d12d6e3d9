//! Batch extraction over image files for evaluations, through the optional [`TemplateCache`]: face
//! templates ([`extract_files`]) and liveness scores ([`liveness_files`]).

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;

use super::cache::{self, CacheKey, CachedLiveness, TemplateCache};
use crate::face::FaceEngine;
use crate::image::decode;

/// Outcome of extracting one image.
#[derive(Debug, Clone)]
pub enum Extracted {
    /// A template vector.
    Vector(Vec<f32>),
    /// Why not (reason code and message).
    Failed(String, String),
}

impl Extracted {
    /// The vector, when extraction succeeded.
    pub fn vector(&self) -> Option<&[f32]> {
        match self {
            Extracted::Vector(v) => Some(v),
            Extracted::Failed(..) => None,
        }
    }
}

/// Images per chunk: bounds the decoded images held at once and paces progress reports.
const CHUNK: usize = 256;

/// Read a file under the engine's byte limit.
fn read_image(path: &Path, engine: &FaceEngine) -> Result<Vec<u8>, crate::Error> {
    let unreadable = |e: std::io::Error| crate::image::ImageError::Unreadable {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let max = engine.config().limits.max_bytes;
    let len = std::fs::metadata(path).map_err(unreadable)?.len();
    if len > max as u64 {
        return Err(crate::image::ImageError::TooManyBytes {
            bytes: len as usize,
            max,
        }
        .into());
    }
    Ok(std::fs::read(path).map_err(unreadable)?)
}

fn failed(e: &crate::Error) -> Extracted {
    Extracted::Failed(e.reason().to_string(), e.to_string())
}

/// Extract the face template of every file `base/<name>` (in parallel chunks), using `cache` when given,
/// calling `progress(done, total)` after each chunk. Each image succeeds or fails on its own.
pub fn extract_files(
    engine: &FaceEngine,
    base: &Path,
    names: &[String],
    cache: Option<&TemplateCache>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> BTreeMap<String, Extracted> {
    let model_sha = engine.embedder.model_sha256();
    let tag = cache.map(|_| cache::face_pipeline_tag(engine));
    let total = names.len();
    let mut out = BTreeMap::new();
    for chunk in names.chunks(CHUNK) {
        // Read, hash and look up in parallel; what is left to compute is decoded.
        enum Step {
            Done(Extracted),
            Compute(image::RgbImage, Option<CacheKey>),
        }
        // Where each result of the batch extraction goes.
        enum Slot {
            Done(Extracted),
            Computed(Option<CacheKey>),
        }
        let steps: Vec<Step> = chunk
            .par_iter()
            .map(|name| {
                let bytes = match read_image(&base.join(name), engine) {
                    Ok(b) => b,
                    Err(e) => return Step::Done(failed(&e)),
                };
                let key = match (cache, &tag) {
                    (Some(c), Some(tag)) => {
                        let key =
                            CacheKey::new("template", &cache::sha256(&bytes), &model_sha, tag);
                        if let Some(v) = c
                            .get_template(&key, &model_sha)
                            .as_ref()
                            .and_then(|t| t.vector())
                        {
                            return Step::Done(Extracted::Vector(v.to_vec()));
                        }
                        Some(key)
                    }
                    _ => None,
                };
                match decode(&bytes, &engine.config().limits) {
                    Ok(d) => Step::Compute(d.rgb, key),
                    Err(e) => Step::Done(failed(&e.into())),
                }
            })
            .collect();
        // Move the decoded images out; `pending` remembers where each computed result goes.
        let mut images = Vec::new();
        let mut pending = Vec::with_capacity(steps.len());
        for step in steps {
            match step {
                Step::Done(e) => pending.push(Slot::Done(e)),
                Step::Compute(img, key) => {
                    images.push(img);
                    pending.push(Slot::Computed(key));
                }
            }
        }
        let mut templates = engine.extract_many(&images).into_iter();
        for (name, step) in chunk.iter().zip(pending) {
            let result = match step {
                Slot::Done(e) => e,
                Slot::Computed(key) => match templates.next() {
                    Some(Ok(t)) => {
                        if let (Some(c), Some(key)) = (cache, key) {
                            // Counted and logged by the cache; the evaluation goes on without it.
                            let _ = c.put_template(&key, &t.template);
                        }
                        Extracted::Vector(t.vector().to_vec())
                    }
                    Some(Err(e)) => failed(&e),
                    None => Extracted::Failed("INTERNAL".into(), "missing result".into()),
                },
            };
            out.insert(name.clone(), result);
        }
        progress(out.len(), total);
    }
    out
}

/// Outcome of scoring one image for liveness.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum LivenessOutcome {
    /// Scored (probability of a live face, mean over the models; and per model).
    Scored(CachedLiveness),
    /// Not scored: reason code and message (no face, unreadable...).
    Failed(String, String),
}

/// Liveness of the selected face of every file in `paths` (in parallel), using `cache` when given.
pub fn liveness_files(
    engine: &FaceEngine,
    paths: &[std::path::PathBuf],
    cache: Option<&TemplateCache>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<LivenessOutcome> {
    let (models_sha, tag) = cache::liveness_key_parts(engine);
    let total = paths.len();
    let mut out = Vec::with_capacity(total);
    let fail = |e: crate::Error| LivenessOutcome::Failed(e.reason().to_string(), e.to_string());
    for chunk in paths.chunks(CHUNK) {
        let results: Vec<LivenessOutcome> = chunk
            .par_iter()
            .map(|path| {
                let bytes = match read_image(path, engine) {
                    Ok(b) => b,
                    Err(e) => return fail(e),
                };
                let key = CacheKey::new("liveness", &cache::sha256(&bytes), &models_sha, &tag);
                if let Some(hit) = cache.and_then(|c| c.get_liveness(&key)) {
                    return LivenessOutcome::Scored(hit);
                }
                let scored = decode(&bytes, &engine.config().limits)
                    .map_err(crate::Error::from)
                    .and_then(|d| engine.liveness(&d.rgb));
                match scored {
                    Ok((_, r)) => {
                        let value = CachedLiveness {
                            score: r.score,
                            models: r.models.into_iter().map(|m| (m.model, m.real)).collect(),
                        };
                        if let Some(c) = cache {
                            // Counted and logged by the cache; the evaluation goes on without it.
                            let _ = c.put_liveness(&key, &value);
                        }
                        LivenessOutcome::Scored(value)
                    }
                    Err(e) => fail(e),
                }
            })
            .collect();
        out.extend(results);
        progress(out.len(), total);
    }
    out
}
