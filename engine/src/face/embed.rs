//! Face embedding: aligned crops in, L2-normalised feature vectors out. The input size, colour order,
//! normalisation and output dimension all come from the model manifest, so a 512-d ArcFace-family or
//! SFace model is a manifest row, not new code.

use image::RgbImage;

use super::detect::planar_tensor;
use crate::runtime::{ModelEntry, ModelError, ModelSession, RuntimeConfig};

/// A loaded embedding model.
pub struct Embedder {
    model: ModelSession,
    size: u32,
    dim: usize,
    /// Largest batch one inference may take (1 when the model's batch dimension is fixed).
    max_batch: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model", &self.model.entry().id)
            .field("dim", &self.dim)
            .finish()
    }
}

impl Embedder {
    /// Load the embedder described by `entry`.
    pub fn load(entry: &ModelEntry, config: &RuntimeConfig) -> Result<Self, ModelError> {
        let size = entry.fixed_dim(2).ok_or_else(|| {
            ModelError::Manifest(format!(
                "{}: embedder input must have a fixed size",
                entry.id
            ))
        })?;
        let dim = entry.param_f32("dim", 0.0)? as usize;
        if dim == 0 {
            return Err(ModelError::Manifest(format!(
                "{}: embedder needs a dim= parameter",
                entry.id
            )));
        }
        let model = ModelSession::load(entry, config)?;
        let max_batch = if entry.fixed_dim(0).is_some() { 1 } else { 32 };
        let embedder = Embedder {
            model,
            size: size as u32,
            dim,
            max_batch,
        };
        // Probe once: a batch-dynamic manifest entry whose graph is in fact fixed falls back to batch 1.
        if embedder.max_batch > 1 {
            let probe = vec![RgbImage::new(embedder.size, embedder.size); 2];
            if embedder
                .run_batch(&probe.iter().collect::<Vec<_>>())
                .is_err()
            {
                tracing::debug!(model = %entry.id, "batch inference unsupported, using batch 1");
                return Ok(Embedder {
                    max_batch: 1,
                    ..embedder
                });
            }
        }
        Ok(embedder)
    }

    /// The manifest row it was loaded from (id, sha256, pre-processing parameters).
    pub fn entry(&self) -> &ModelEntry {
        self.model.entry()
    }

    /// Model id.
    pub fn model_id(&self) -> &str {
        &self.model.entry().id
    }

    /// sha256 of the model file.
    pub fn model_sha256(&self) -> [u8; 32] {
        self.model.entry().sha256_bytes()
    }

    /// sha256 of the model file, lower-case hex (as in the manifest and calibration files).
    pub fn model_sha256_hex(&self) -> &str {
        &self.model.entry().sha256
    }

    /// Side of the aligned crop the model takes.
    pub fn input_size(&self) -> u32 {
        self.size
    }

    /// Output dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Largest batch per inference.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Embed aligned crops (each `input_size`² pixels), batching when the model allows.
    /// Every vector is L2-normalised; a non-finite or zero output is an error.
    pub fn embed(&self, faces: &[&RgbImage]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut out = Vec::with_capacity(faces.len());
        for chunk in faces.chunks(self.max_batch.max(1)) {
            out.extend(self.run_batch(chunk)?);
        }
        Ok(out)
    }

    fn run_batch(&self, faces: &[&RgbImage]) -> Result<Vec<Vec<f32>>, ModelError> {
        let entry = self.model.entry();
        let n = faces.len();
        let plane = (self.size * self.size * 3) as usize;
        let mut input = Vec::with_capacity(n * plane);
        for face in faces {
            if face.dimensions() != (self.size, self.size) {
                return Err(ModelError::inference(
                    &entry.id,
                    format!(
                        "crop is {:?}, model takes {}x{}",
                        face.dimensions(),
                        self.size,
                        self.size
                    ),
                ));
            }
            input.extend(planar_tensor(
                face,
                self.size,
                self.size,
                entry.colour,
                entry.mean,
                entry.std,
            ));
        }
        let s = self.size as usize;
        let outputs = self.model.run_f32(&[n, 3, s, s], &input)?;
        let first = outputs
            .first()
            .ok_or_else(|| ModelError::inference(&entry.id, "no output"))?;
        if first.data.len() != n * self.dim {
            return Err(ModelError::inference(
                &entry.id,
                format!(
                    "output has {} values, expected {n}x{}",
                    first.data.len(),
                    self.dim
                ),
            ));
        }
        first
            .data
            .chunks(self.dim)
            .map(|v| {
                l2_normalised(v)
                    .ok_or_else(|| ModelError::inference(&entry.id, "non-finite or zero embedding"))
            })
            .collect()
    }
}

/// `v / |v|`, or None when `v` is zero or not finite.
pub fn l2_normalised(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    if !norm.is_finite() || norm <= 1e-12 {
        return None;
    }
    Some(v.iter().map(|x| (*x as f64 / norm) as f32).collect())
}
