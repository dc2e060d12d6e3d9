//! [`CachedExtractor`]: any fingerprint extractor in front of the on-disk [`TemplateCache`].
//!
//! LEADER takes over a second per image on this kind of CPU, so an FVC run (400 images) costs minutes;
//! with the cache a re-run (another matcher setting, a cross-extractor run) is instant. The key is
//! `sha256(image width, height, dpi, pixels)`, the model file's sha256 and the extractor's tag (its
//! settings and code revision), as for face templates: another image, model or setting is a miss, never a
//! stale hit. Failures to enrol are not cached (the template format cannot say "none"); they are
//! recomputed.

use sha2::{Digest, Sha256};
use sinhtrac_finger::{Extractor, FingerTemplate, ImageView, Result};

use crate::protocols::cache::{CacheKey, TemplateCache};

/// An extractor whose templates are read from and written to a [`TemplateCache`].
pub struct CachedExtractor<'a, E> {
    inner: E,
    cache: &'a TemplateCache,
    model_sha256: [u8; 32],
    tag: String,
}

impl<E: std::fmt::Debug> std::fmt::Debug for CachedExtractor<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedExtractor")
            .field("inner", &self.inner)
            .field("cache", &self.cache.dir())
            .field("tag", &self.tag)
            .finish()
    }
}

impl<'a, E: Extractor> CachedExtractor<'a, E> {
    /// Wraps `inner`; `model_sha256` and `tag` must change whenever `inner` would give other templates
    /// for the same image (use zeros for an extractor without a model file, and put its revision in `tag`).
    pub fn new(inner: E, cache: &'a TemplateCache, model_sha256: [u8; 32], tag: String) -> Self {
        CachedExtractor {
            inner,
            cache,
            model_sha256,
            tag,
        }
    }

    /// The wrapped extractor.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The cache key of `image`.
    pub fn key(&self, image: &ImageView<'_>) -> CacheKey {
        let mut h = Sha256::new();
        h.update(image.width.to_le_bytes());
        h.update(image.height.to_le_bytes());
        h.update(image.dpi.to_le_bytes());
        h.update(image.pixels);
        let image_sha: [u8; 32] = h.finalize().into();
        CacheKey::new("finger-template", &image_sha, &self.model_sha256, &self.tag)
    }
}

impl<E: Extractor> Extractor for CachedExtractor<'_, E> {
    fn extract(&self, image: &ImageView<'_>) -> Result<FingerTemplate> {
        let key = self.key(image);
        if let Some(t) = self.cache.get_finger(&key) {
            return Ok(t);
        }
        let t = self.inner.extract(image)?;
        // Write errors are counted by the cache; the template is good either way.
        let _ = self.cache.put_finger(&key, &t);
        Ok(t)
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
