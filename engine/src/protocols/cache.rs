//! On-disk cache of per-image results for evaluations: face templates, liveness scores and fingerprint
//! minutiae templates.
//!
//! Extracting the 7,701 LFW images takes minutes on two cores; every evaluation and calibration re-reads
//! the same images with the same models. An entry is addressed by
//! `sha256(kind ‖ sha256(image bytes) ‖ model sha256 ‖ pipeline tag)`, so it is found again only for the
//! same bytes, the same model file and the same pipeline settings (detector row and threshold, face
//! policy, TTA, [`PIPELINE_REVISION`]); anything else is a miss, never a stale hit.
//!
//! Entries are files `<dir>/<2 hex>/<64 hex>.<ext>`:
//! - `.stpl`: the engine's versioned template bytes ([`Template::encode`]), checked with
//!   [`Template::decode`] (magic, version, CRC-32, finite values) and against the expected model sha256;
//! - `.sliv`: a liveness record (JSON body + CRC-32), checked the same way;
//! - `.sftt`: a fingerprint template ([`FingerTemplate::to_bytes`]: versioned, CRC-32, every field
//!   validated on reading), written by [`crate::finger::CachedExtractor`].
//!
//! A corrupt or mismatched entry is counted, deleted and re-computed, never trusted. Writes go to a
//! temporary file renamed into place, so a reader sees a whole entry or none, and concurrent writers of
//! the same key are harmless (they write the same bytes). Failures (no face...) are not cached: they are
//! rare and cheap to recompute, and the template format has no way to say "no template".

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use sinhtrac_finger::FingerTemplate;

use crate::face::FaceEngine;
use crate::template::{Modality, Template};

/// Bump when detection, alignment or embedding pre-processing changes in a way the manifest rows and
/// the face configuration do not show (code, not settings): every older entry then misses.
pub const PIPELINE_REVISION: u32 = 3;

/// Errors of the cache itself (I/O). Lookups never fail: an unreadable entry is a miss.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A folder or file could not be created or written.
    #[error("template cache: cannot write {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// The address of one cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key of `kind` results (e.g. "template") for an image, a model and a pipeline tag.
    pub fn new(kind: &str, image_sha256: &[u8; 32], model_sha256: &[u8; 32], tag: &str) -> Self {
        let mut h = Sha256::new();
        // Length prefixes keep the fields unambiguous.
        for part in [kind.as_bytes(), image_sha256, model_sha256, tag.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        CacheKey(h.finalize().into())
    }

    /// Lower-case hex.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Counters of one cache's use, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Entries found and valid.
    pub hits: u64,
    /// Entries absent.
    pub misses: u64,
    /// Entries found but corrupt or for another model (deleted, recomputed; also counted as misses).
    pub corrupt: u64,
    /// Entries written.
    pub written: u64,
    /// Entries that could not be written (the evaluation goes on without them).
    pub write_errors: u64,
}

/// A cached liveness outcome: the mean score and each model's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CachedLiveness {
    /// Mean probability of a live face over the models.
    pub score: f32,
    /// (model id, probability of live) per model, in scoring order.
    pub models: Vec<(String, f32)>,
}

const LIVENESS_MAGIC: &[u8; 4] = b"SLIV";
const LIVENESS_VERSION: u16 = 1;

impl CachedLiveness {
    fn encode(&self) -> Vec<u8> {
        let mut out = LIVENESS_MAGIC.to_vec();
        out.extend_from_slice(&LIVENESS_VERSION.to_le_bytes());
        // Serialising plain numbers and strings cannot fail; an empty body would fail decoding anyway.
        out.extend(serde_json::to_vec(self).unwrap_or_default());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 10 || &bytes[..4] != LIVENESS_MAGIC {
            return None;
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return None;
        }
        if u16::from_le_bytes([body[4], body[5]]) != LIVENESS_VERSION {
            return None;
        }
        let v: CachedLiveness = serde_json::from_slice(&body[6..]).ok()?;
        let valid = |x: f32| x.is_finite() && (0.0..=1.0).contains(&x);
        (valid(v.score) && !v.models.is_empty() && v.models.iter().all(|(_, s)| valid(*s)))
            .then_some(v)
    }
}

/// A folder of cached templates and liveness scores. Shareable across threads.
#[derive(Debug)]
pub struct TemplateCache {
    dir: PathBuf,
    hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
    written: AtomicU64,
    write_errors: AtomicU64,
}

impl TemplateCache {
    /// The default folder: `$SINHTRAC_HOME/templates` (`~/.cache/sinhtrac/templates`).
    pub fn default_dir() -> PathBuf {
        crate::paths::sinhtrac_home().join("templates")
    }

    /// Open (creating) a cache folder.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        std::fs::create_dir_all(dir).map_err(|source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(TemplateCache {
            dir: dir.to_path_buf(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            written: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            corrupt: self.corrupt.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }

    fn path(&self, key: &CacheKey, ext: &str) -> PathBuf {
        let h = key.hex();
        self.dir.join(&h[..2]).join(format!("{h}.{ext}"))
    }

    /// Read an entry and check it with `parse`; a bad entry is deleted and counted.
    fn get<T>(
        &self,
        key: &CacheKey,
        ext: &str,
        parse: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Option<T> {
        let path = self.path(key, ext);
        let Ok(bytes) = std::fs::read(&path) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        match parse(&bytes) {
            Some(v) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(v)
            }
            None => {
                tracing::warn!(path = %path.display(), "corrupt cache entry: recomputing");
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                self.misses.fetch_add(1, Ordering::Relaxed);
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn put(&self, key: &CacheKey, ext: &str, bytes: &[u8]) -> Result<(), CacheError> {
        static TMP: AtomicU64 = AtomicU64::new(0);
        let path = self.path(key, ext);
        let io = |source| CacheError::Io {
            path: path.clone(),
            source,
        };
        let result = (|| {
            if let Some(d) = path.parent() {
                std::fs::create_dir_all(d).map_err(io)?;
            }
            let tmp = path.with_extension(format!(
                "tmp.{}.{}",
                std::process::id(),
                TMP.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&tmp, bytes).map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io(e)
            })
        })();
        match &result {
            Ok(()) => {
                self.written.fetch_add(1, Ordering::Relaxed);
            }
            // A read-only or full disk would fail every write: say it once, count the rest.
            Err(e) => {
                if self.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("{e} (further cache write errors are only counted)");
                }
            }
        }
        result
    }

    /// A cached face template made by the model with `model_sha256`, if present and valid.
    pub fn get_template(&self, key: &CacheKey, model_sha256: &[u8; 32]) -> Option<Template> {
        self.get(key, "stpl", |b| {
            Template::decode(b).ok().filter(|t| {
                t.modality == Modality::Face
                    && t.model_sha256 == *model_sha256
                    && t.vector().is_some()
            })
        })
    }

    /// Store a template. Errors are also counted in [`stats`](Self::stats) and the first is logged, so
    /// callers that carry on without the cache may ignore them.
    pub fn put_template(&self, key: &CacheKey, template: &Template) -> Result<(), CacheError> {
        self.put(key, "stpl", &template.encode())
    }

    /// A cached fingerprint minutiae template, if present and valid (`.sftt`: the finger crate's
    /// versioned template bytes, CRC-checked and field-validated by [`FingerTemplate::from_bytes`]).
    pub fn get_finger(&self, key: &CacheKey) -> Option<FingerTemplate> {
        self.get(key, "sftt", |b| FingerTemplate::from_bytes(b).ok())
    }

    /// Store a fingerprint minutiae template.
    pub fn put_finger(&self, key: &CacheKey, template: &FingerTemplate) -> Result<(), CacheError> {
        let bytes = template.to_bytes().map_err(|e| CacheError::Io {
            path: self.path(key, "sftt"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        })?;
        self.put(key, "sftt", &bytes)
    }

    /// A cached liveness outcome, if present and valid.
    pub fn get_liveness(&self, key: &CacheKey) -> Option<CachedLiveness> {
        self.get(key, "sliv", CachedLiveness::decode)
    }

    /// Store a liveness outcome.
    pub fn put_liveness(&self, key: &CacheKey, value: &CachedLiveness) -> Result<(), CacheError> {
        self.put(key, "sliv", &value.encode())
    }
}

/// Everything besides the embedder file and the image bytes that changes a face template: the detector
/// row (file sha256, pre-processing parameters) and its effective threshold, the embedder row, the face
/// policy, TTA and [`PIPELINE_REVISION`].
pub fn face_pipeline_tag(engine: &FaceEngine) -> String {
    let c = engine.config();
    let entry = |e: &crate::runtime::ModelEntry| serde_json::to_string(e).unwrap_or_default();
    format!(
        "rev={PIPELINE_REVISION};det={};det_score={};emb={};multi={:?};min_face={};confident={};tta={}",
        entry(engine.detector.entry()),
        engine.detector.score_threshold,
        entry(engine.embedder.entry()),
        c.multi_face,
        c.min_face_px,
        c.confident_score,
        c.flip_tta
    )
}

/// The key material of liveness entries: one sha256 over every liveness model file (in scoring order),
/// and a tag of their rows plus the face pipeline settings that choose the face box.
pub fn liveness_key_parts(engine: &FaceEngine) -> ([u8; 32], String) {
    let entries = engine.liveness.entries();
    let mut h = Sha256::new();
    let mut rows = Vec::new();
    for e in &entries {
        h.update(e.sha256_bytes());
        rows.push(serde_json::to_string(e).unwrap_or_default());
    }
    let c = engine.config();
    let tag = format!(
        "rev={PIPELINE_REVISION};live=[{}];det={};det_score={};multi={:?};min_face={};confident={}",
        rows.join(","),
        serde_json::to_string(engine.detector.entry()).unwrap_or_default(),
        engine.detector.score_threshold,
        c.multi_face,
        c.min_face_px,
        c.confident_score
    );
    (h.finalize().into(), tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::QualitySummary;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sinhtrac-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn template(sha: [u8; 32]) -> Template {
        Template::face_vector(
            "test-model",
            sha,
            &[0.6, 0.8, 0.0],
            QualitySummary::default(),
        )
        .unwrap()
    }

    #[test]
    fn template_round_trip_and_stats() {
        let dir = temp_dir("round");
        let cache = TemplateCache::open(&dir).unwrap();
        let (img, model) = (sha256(b"image bytes"), [7u8; 32]);
        let key = CacheKey::new("template", &img, &model, "tag");
        assert!(cache.get_template(&key, &model).is_none());
        let t = template(model);
        cache.put_template(&key, &t).unwrap();
        assert_eq!(cache.get_template(&key, &model), Some(t));
        assert_eq!(
            cache.stats(),
            CacheStats {
                hits: 1,
                misses: 1,
                corrupt: 0,
                written: 1,
                write_errors: 0
            }
        );
        // No temporary files left behind.
        let files: Vec<_> = walk(&dir);
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].to_string_lossy().ends_with(".stpl"));
        std::fs::remove_dir_all(&dir).ok();
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }

    #[test]
    fn corrupt_entry_is_a_miss_and_is_removed() {
        let dir = temp_dir("corrupt");
        let cache = TemplateCache::open(&dir).unwrap();
        let model = [1u8; 32];
        let key = CacheKey::new("template", &sha256(b"x"), &model, "tag");
        cache.put_template(&key, &template(model)).unwrap();
        let path = walk(&dir).pop().unwrap();
        // Flip one payload bit: the CRC catches it.
        let mut bytes = std::fs::read(&path).unwrap();
        let i = bytes.len() - 6;
        bytes[i] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        assert!(cache.get_template(&key, &model).is_none());
        assert_eq!(cache.stats().corrupt, 1);
        assert!(!path.exists(), "corrupt entry must be deleted");
        // Truncated and garbage entries too.
        for junk in [&b""[..], b"STPL", b"not a template at all"] {
            cache.put_template(&key, &template(model)).unwrap();
            std::fs::write(&path, junk).unwrap();
            assert!(cache.get_template(&key, &model).is_none());
        }
        assert_eq!(cache.stats().corrupt, 4);
        // Recomputed and stored again: a hit.
        cache.put_template(&key, &template(model)).unwrap();
        assert!(cache.get_template(&key, &model).is_some());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn another_model_or_tag_or_image_misses() {
        let dir = temp_dir("model");
        let cache = TemplateCache::open(&dir).unwrap();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let img = sha256(b"img");
        let key_a = CacheKey::new("template", &img, &a, "tag");
        cache.put_template(&key_a, &template(a)).unwrap();
        // A different model gives a different key...
        let key_b = CacheKey::new("template", &img, &b, "tag");
        assert_ne!(key_a, key_b);
        assert!(cache.get_template(&key_b, &b).is_none());
        // ...and an entry whose template names another model is refused even under the right key.
        assert!(cache.get_template(&key_a, &b).is_none());
        assert_eq!(cache.stats().corrupt, 1);
        // Tag, image and kind are part of the key.
        assert_ne!(key_a, CacheKey::new("template", &img, &a, "tag2"));
        assert_ne!(
            key_a,
            CacheKey::new("template", &sha256(b"img2"), &a, "tag")
        );
        assert_ne!(key_a, CacheKey::new("liveness", &img, &a, "tag"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn liveness_round_trip_and_validation() {
        let dir = temp_dir("live");
        let cache = TemplateCache::open(&dir).unwrap();
        let key = CacheKey::new("liveness", &sha256(b"i"), &[3u8; 32], "t");
        let v = CachedLiveness {
            score: 0.25,
            models: vec![("a".into(), 0.2), ("b".into(), 0.3)],
        };
        cache.put_liveness(&key, &v).unwrap();
        assert_eq!(cache.get_liveness(&key), Some(v.clone()));
        let path = walk(&dir).pop().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(cache.get_liveness(&key).is_none());
        // Out-of-range scores are refused even with a valid checksum.
        let bad = CachedLiveness {
            score: 1.5,
            ..v.clone()
        };
        assert!(CachedLiveness::decode(&bad.encode()).is_none());
        assert!(CachedLiveness::decode(&v.encode()).is_some());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unwritable_folder_is_an_error_not_a_panic() {
        let file = temp_dir("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(TemplateCache::open(&file).is_err());
        std::fs::remove_file(&file).ok();
    }
}
