//! The model manifest (`models/manifest.tsv`, embedded at build time): what each model file is, its
//! checksum and the exact input contract its pre-processing must honour.

use std::collections::BTreeMap;

use super::ModelError;

/// The manifest text this engine was built with.
pub const EMBEDDED_MANIFEST: &str = include_str!("../../../models/manifest.tsv");

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Face detector with 5 landmarks.
    Detector,
    /// Face feature extractor (embedding).
    Embedder,
    /// Passive (single-image) face liveness.
    Liveness,
    /// Fingerprint minutiae extractor.
    Minutiae,
}

/// Channel order the network expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Colour {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (OpenCV order).
    Bgr,
    /// One grey channel.
    Gray,
}

/// One row of the manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelEntry {
    /// Stable model id used in templates and APIs (e.g. `mobilefacenet-128`).
    pub id: String,
    /// What the model does.
    pub role: Role,
    /// File name under the models folder.
    pub file: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// Licence summary.
    pub licence: String,
    /// Input tensor name.
    pub input_name: String,
    /// Input shape as written (`1x3xHxW`, `Nx3x112x112`): `N`, `H`, `W` are dynamic.
    pub input_shape: Vec<String>,
    /// Tensor layout (`NCHW` or `NHWC`).
    pub layout: String,
    /// Channel order.
    pub colour: Colour,
    /// Normalisation: value = (pixel − mean) / std.
    pub mean: f32,
    /// Normalisation: value = (pixel − mean) / std.
    pub std: f32,
    /// Output description.
    pub output: String,
    /// Whether this is the default model of its role (several liveness models may be default: an ensemble).
    pub default: bool,
    /// Extra key=value parameters (crop scale, score threshold...).
    pub params: BTreeMap<String, String>,
}

impl ModelEntry {
    /// The sha256 as 32 bytes.
    pub fn sha256_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, chunk) in self.sha256.as_bytes().chunks(2).enumerate().take(32) {
            let hex = std::str::from_utf8(chunk).unwrap_or("00");
            out[i] = u8::from_str_radix(hex, 16).unwrap_or(0);
        }
        out
    }

    /// A numeric parameter, or `default` when absent.
    pub fn param_f32(&self, key: &str, default: f32) -> Result<f32, ModelError> {
        match self.params.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ModelError::Manifest(format!(
                    "model {}: parameter {key}={v} is not a number",
                    self.id
                ))
            }),
        }
    }

    /// A string parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// A fixed input dimension (index into the shape), or None when dynamic.
    pub fn fixed_dim(&self, index: usize) -> Option<usize> {
        self.input_shape.get(index).and_then(|d| d.parse().ok())
    }
}

/// All models the engine knows.
#[derive(Debug, Clone)]
pub struct Manifest {
    entries: Vec<ModelEntry>,
}

impl Manifest {
    /// The manifest compiled into this build.
    pub fn embedded() -> Self {
        // The embedded manifest is part of the source tree and checked by tests; a parse failure here is a
        // build defect, so fall back to an empty manifest and let lookups report the model as unknown.
        Self::parse(EMBEDDED_MANIFEST).unwrap_or(Manifest {
            entries: Vec::new(),
        })
    }

    /// Parse manifest text (tab-separated, `#` comments, one header row starting with `id`).
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let mut entries = Vec::new();
        for (lineno, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') || line.starts_with("id\t") {
                continue;
            }
            let bad = |what: &str| ModelError::Manifest(format!("line {}: {what}", lineno + 1));
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() != 13 {
                return Err(bad(&format!("expected 13 columns, found {}", cols.len())));
            }
            let role = match cols[1] {
                "detector" => Role::Detector,
                "embedder" => Role::Embedder,
                "liveness" => Role::Liveness,
                "minutiae" => Role::Minutiae,
                other => return Err(bad(&format!("unknown role {other}"))),
            };
            let colour = match cols[7] {
                "RGB" => Colour::Rgb,
                "BGR" => Colour::Bgr,
                "GRAY" => Colour::Gray,
                other => return Err(bad(&format!("unknown colour {other}"))),
            };
            let (input_name, shape) = cols[5]
                .split_once(':')
                .ok_or_else(|| bad("input must be name:shape"))?;
            let sha = cols[3].to_ascii_lowercase();
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("sha256 must be 64 hex digits"));
            }
            let num = |s: &str, what: &str| {
                s.parse::<f32>()
                    .map_err(|_| bad(&format!("{what} is not a number")))
            };
            let params = cols[12]
                .split(';')
                .filter(|kv| !kv.is_empty())
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            entries.push(ModelEntry {
                id: cols[0].to_string(),
                role,
                file: cols[2].to_string(),
                sha256: sha,
                licence: cols[4].to_string(),
                input_name: input_name.to_string(),
                input_shape: shape.split('x').map(str::to_string).collect(),
                layout: cols[6].to_string(),
                colour,
                mean: num(cols[8], "mean")?,
                std: num(cols[9], "std")?,
                output: cols[10].to_string(),
                default: cols[11] == "yes",
                params,
            });
        }
        Ok(Manifest { entries })
    }

    /// Every entry.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Result<&ModelEntry, ModelError> {
        self.entries
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| ModelError::UnknownModel(id.to_string()))
    }

    /// The default entries of a role, in manifest order.
    pub fn defaults(&self, role: Role) -> impl Iterator<Item = &ModelEntry> {
        self.entries
            .iter()
            .filter(move |e| e.role == role && e.default)
    }

    /// The first default entry of a role.
    pub fn default_for(&self, role: Role) -> Result<&ModelEntry, ModelError> {
        self.defaults(role).next().ok_or_else(|| {
            ModelError::UnknownModel(format!("no default {role:?} model in the manifest"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_manifest_parses_and_has_defaults() {
        let m = Manifest::parse(EMBEDDED_MANIFEST).expect("embedded manifest parses");
        assert_eq!(m.default_for(Role::Detector).unwrap().id, "yunet-2026may");
        assert_eq!(
            m.default_for(Role::Embedder).unwrap().id,
            "mobilefacenet-128"
        );
        assert_eq!(m.defaults(Role::Liveness).count(), 2);
        let e = m.get("mobilefacenet-128").unwrap();
        assert_eq!(e.colour, Colour::Rgb);
        assert_eq!((e.mean, e.std), (127.5, 128.0));
        assert_eq!(e.fixed_dim(2), Some(112));
        assert_eq!(e.sha256_bytes()[0], 0xf0);
        // Non-commercial weights are never a default.
        assert!(m
            .entries()
            .iter()
            .filter(|e| e.licence.contains("NON-COMMERCIAL"))
            .all(|e| !e.default));
    }

    #[test]
    fn malformed_rows_are_errors() {
        assert!(Manifest::parse("a\tb\tc").is_err());
        let row = "x\tdetector\tf\tnothex\tMIT\tinput:1x3xHxW\tNCHW\tBGR\t0\t1\to\tyes\t";
        assert!(Manifest::parse(row).is_err());
    }
}
