//! The persistent template: a versioned, checksummed binary record that is validated on decode.
//!
//! Layout (little-endian), format version 1:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `STPL` |
//! | 2 | format version (1) |
//! | 1 | modality (1 face, 2 finger) |
//! | 1 | element type (1 f32, 2 f16, 3 i8, 4 opaque bytes) |
//! | 1 + n | model id (length-prefixed UTF-8, ≤ 64 bytes) |
//! | 32 | sha256 of the model file that produced it |
//! | 4 | dimension (element count, or payload bytes for opaque payloads) |
//! | 2 + q | quality summary (length-prefixed; v1: 8 × f32, see [`QualitySummary`]) |
//! | d × size | payload |
//! | 4 | CRC-32 of everything above |
//!
//! Derived search structures (quantised codes, cylinders) are rebuilt from this, never stored in it.

/// Magic bytes at the start of every template.
pub const MAGIC: [u8; 4] = *b"STPL";
/// The format version this build writes.
pub const FORMAT_VERSION: u16 = 1;
/// Longest model id accepted.
pub const MAX_MODEL_ID: usize = 64;
/// Largest vector dimension / payload accepted (4096 floats, 64 KiB opaque).
pub const MAX_DIM: u32 = 65_536;

/// Why a template was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    /// Not a sinhtrac template.
    #[error("not a sinhtrac template (bad magic)")]
    BadMagic,
    /// Written by a format version this build does not read.
    #[error("template format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// Version in the template.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// Shorter or longer than its header says.
    #[error("template is truncated or has trailing bytes: {0}")]
    BadLength(String),
    /// Checksum does not match.
    #[error("template checksum mismatch (corrupt)")]
    BadChecksum,
    /// A field holds an impossible value.
    #[error("template field {field} is invalid: {detail}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The vector holds NaN or infinity.
    #[error("template vector holds non-finite values")]
    NonFinite,
    /// Templates from different models or modalities cannot be compared.
    #[error("cannot compare a {a} template with a {b} template")]
    ModelMismatch {
        /// First template's model (and modality).
        a: String,
        /// Second template's model.
        b: String,
    },
    /// Templates of different format versions cannot be compared.
    #[error("cannot compare template format version {a} with {b}")]
    VersionMismatch {
        /// First version.
        a: u16,
        /// Second version.
        b: u16,
    },
    /// Vector lengths differ.
    #[error("dimension mismatch: {a} vs {b}")]
    DimensionMismatch {
        /// First dimension.
        a: usize,
        /// Second dimension.
        b: usize,
    },
}

impl TemplateError {
    /// Stable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            TemplateError::BadMagic => "TEMPLATE_BAD_MAGIC",
            TemplateError::UnsupportedVersion { .. } | TemplateError::VersionMismatch { .. } => {
                "TEMPLATE_VERSION"
            }
            TemplateError::BadLength(_)
            | TemplateError::BadChecksum
            | TemplateError::InvalidField { .. } => "TEMPLATE_CORRUPT",
            TemplateError::NonFinite => "TEMPLATE_NON_FINITE",
            TemplateError::ModelMismatch { .. } => "TEMPLATE_MODEL_MISMATCH",
            TemplateError::DimensionMismatch { .. } => "TEMPLATE_DIMENSION",
        }
    }
}

/// Biometric modality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// Face.
    Face = 1,
    /// Fingerprint.
    Finger = 2,
}

/// Payload element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ElementType {
    /// 32-bit float vector.
    F32 = 1,
    /// 16-bit float vector.
    F16 = 2,
    /// 8-bit integer vector.
    I8 = 3,
    /// Modality-specific bytes (e.g. a minutiae record).
    Opaque = 4,
}

/// Quality recorded with a template (face measures; zero where a modality has none).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct QualitySummary {
    /// Detector confidence.
    pub detection_score: f32,
    /// Inter-eye distance in pixels.
    pub inter_eye_px: f32,
    /// Sharpness (variance of Laplacian).
    pub sharpness: f32,
    /// Mean grey level.
    pub brightness: f32,
    /// Yaw in degrees.
    pub yaw_deg: f32,
    /// Pitch in degrees.
    pub pitch_deg: f32,
    /// Roll in degrees.
    pub roll_deg: f32,
    /// Overall quality in [0, 1] (modality-specific; 0 when unknown).
    pub overall: f32,
}

const QUALITY_V1_FIELDS: usize = 8;

impl QualitySummary {
    fn to_array(self) -> [f32; QUALITY_V1_FIELDS] {
        [
            self.detection_score,
            self.inter_eye_px,
            self.sharpness,
            self.brightness,
            self.yaw_deg,
            self.pitch_deg,
            self.roll_deg,
            self.overall,
        ]
    }

    fn from_array(a: [f32; QUALITY_V1_FIELDS]) -> Self {
        QualitySummary {
            detection_score: a[0],
            inter_eye_px: a[1],
            sharpness: a[2],
            brightness: a[3],
            yaw_deg: a[4],
            pitch_deg: a[5],
            roll_deg: a[6],
            overall: a[7],
        }
    }
}

/// Template payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// An L2-normalised feature vector.
    Vector(Vec<f32>),
    /// Modality-specific bytes, validated by that modality's codec.
    Opaque(Vec<u8>),
}

/// A decoded, validated template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Format version it was written in.
    pub format_version: u16,
    /// Modality.
    pub modality: Modality,
    /// Id of the model that produced it.
    pub model_id: String,
    /// sha256 of that model's file.
    pub model_sha256: [u8; 32],
    /// Quality at capture.
    pub quality: QualitySummary,
    /// The features.
    pub payload: Payload,
}

fn check_model_id(id: &str) -> Result<(), TemplateError> {
    if id.is_empty() || id.len() > MAX_MODEL_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TemplateError::InvalidField {
            field: "model_id",
            detail: format!("{id:?}"),
        });
    }
    Ok(())
}

impl Template {
    /// A face template from a feature vector (must be finite; it is stored as given).
    pub fn face_vector(
        model_id: &str,
        model_sha256: [u8; 32],
        vector: &[f32],
        quality: QualitySummary,
    ) -> Result<Self, TemplateError> {
        check_model_id(model_id)?;
        if vector.is_empty() || vector.len() > MAX_DIM as usize {
            return Err(TemplateError::InvalidField {
                field: "dimension",
                detail: vector.len().to_string(),
            });
        }
        if !vector.iter().all(|v| v.is_finite()) {
            return Err(TemplateError::NonFinite);
        }
        Ok(Template {
            format_version: FORMAT_VERSION,
            modality: Modality::Face,
            model_id: model_id.to_string(),
            model_sha256,
            quality,
            payload: Payload::Vector(vector.to_vec()),
        })
    }

    /// Element type of the payload.
    pub fn element_type(&self) -> ElementType {
        match self.payload {
            Payload::Vector(_) => ElementType::F32,
            Payload::Opaque(_) => ElementType::Opaque,
        }
    }

    /// The feature vector, if this is a vector template.
    pub fn vector(&self) -> Option<&[f32]> {
        match &self.payload {
            Payload::Vector(v) => Some(v),
            Payload::Opaque(_) => None,
        }
    }

    /// Serialise.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.payload_len() * 4);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.format_version.to_le_bytes());
        out.push(self.modality as u8);
        out.push(self.element_type() as u8);
        out.push(self.model_id.len() as u8);
        out.extend_from_slice(self.model_id.as_bytes());
        out.extend_from_slice(&self.model_sha256);
        out.extend_from_slice(&(self.payload_len() as u32).to_le_bytes());
        out.extend_from_slice(&((QUALITY_V1_FIELDS * 4) as u16).to_le_bytes());
        for q in self.quality.to_array() {
            out.extend_from_slice(&q.to_le_bytes());
        }
        match &self.payload {
            Payload::Vector(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Payload::Opaque(b) => out.extend_from_slice(b),
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn payload_len(&self) -> usize {
        match &self.payload {
            Payload::Vector(v) => v.len(),
            Payload::Opaque(b) => b.len(),
        }
    }

    /// Parse and validate: magic, version, lengths, checksum, field ranges, finite values.
    pub fn decode(bytes: &[u8]) -> Result<Self, TemplateError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(TemplateError::BadMagic);
        }
        let version = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(TemplateError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if bytes.len() < 4 {
            return Err(TemplateError::BadLength("no checksum".into()));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) != stored {
            return Err(TemplateError::BadChecksum);
        }
        let mut r = Reader {
            bytes: body,
            pos: r.pos,
        };
        let modality = match r.u8()? {
            1 => Modality::Face,
            2 => Modality::Finger,
            m => {
                return Err(TemplateError::InvalidField {
                    field: "modality",
                    detail: m.to_string(),
                })
            }
        };
        let element = r.u8()?;
        let id_len = r.u8()? as usize;
        let model_id = std::str::from_utf8(r.take(id_len)?)
            .map_err(|_| TemplateError::InvalidField {
                field: "model_id",
                detail: "not UTF-8".into(),
            })?
            .to_string();
        check_model_id(&model_id)?;
        let mut model_sha256 = [0u8; 32];
        model_sha256.copy_from_slice(r.take(32)?);
        let dim = r.u32()?;
        if dim == 0 || dim > MAX_DIM {
            return Err(TemplateError::InvalidField {
                field: "dimension",
                detail: dim.to_string(),
            });
        }
        let q_len = r.u16()? as usize;
        if q_len < QUALITY_V1_FIELDS * 4 || !q_len.is_multiple_of(4) {
            return Err(TemplateError::InvalidField {
                field: "quality",
                detail: format!("{q_len} bytes"),
            });
        }
        let q_bytes = r.take(q_len)?;
        let mut q = [0f32; QUALITY_V1_FIELDS];
        for (i, v) in q.iter_mut().enumerate() {
            *v = f32::from_le_bytes([
                q_bytes[4 * i],
                q_bytes[4 * i + 1],
                q_bytes[4 * i + 2],
                q_bytes[4 * i + 3],
            ]);
        }
        if !q.iter().all(|v| v.is_finite()) {
            return Err(TemplateError::InvalidField {
                field: "quality",
                detail: "non-finite".into(),
            });
        }
        let payload = match element {
            1 => {
                let raw = r.take(dim as usize * 4)?;
                let v: Vec<f32> = raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                if !v.iter().all(|x| x.is_finite()) {
                    return Err(TemplateError::NonFinite);
                }
                Payload::Vector(v)
            }
            4 => Payload::Opaque(r.take(dim as usize)?.to_vec()),
            e => {
                return Err(TemplateError::InvalidField {
                    field: "element_type",
                    detail: e.to_string(),
                })
            }
        };
        if r.pos != body.len() {
            return Err(TemplateError::BadLength(format!(
                "{} trailing bytes",
                body.len() - r.pos
            )));
        }
        Ok(Template {
            format_version: version,
            modality,
            model_id,
            model_sha256,
            quality: QualitySummary::from_array(q),
            payload,
        })
    }

    /// Check that `other` can be compared with `self`: same format version, modality, model and hash.
    pub fn check_comparable(&self, other: &Template) -> Result<(), TemplateError> {
        if self.format_version != other.format_version {
            return Err(TemplateError::VersionMismatch {
                a: self.format_version,
                b: other.format_version,
            });
        }
        if self.modality != other.modality
            || self.model_id != other.model_id
            || self.model_sha256 != other.model_sha256
        {
            return Err(TemplateError::ModelMismatch {
                a: format!("{:?}/{}", self.modality, self.model_id),
                b: format!("{:?}/{}", other.modality, other.model_id),
            });
        }
        Ok(())
    }

    /// Cosine similarity of two vector templates of the same model, in [-1, 1].
    pub fn similarity(&self, other: &Template) -> Result<f32, TemplateError> {
        self.check_comparable(other)?;
        match (&self.payload, &other.payload) {
            (Payload::Vector(a), Payload::Vector(b)) => cosine(a, b),
            _ => Err(TemplateError::InvalidField {
                field: "element_type",
                detail: "similarity needs vector templates".into(),
            }),
        }
    }
}

/// Cosine similarity of two vectors of equal length (exact for L2-normalised input, safe otherwise).
pub fn cosine(a: &[f32], b: &[f32]) -> Result<f32, TemplateError> {
    if a.len() != b.len() {
        return Err(TemplateError::DimensionMismatch {
            a: a.len(),
            b: b.len(),
        });
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        dot += (*x as f64) * (*y as f64);
        na += (*x as f64) * (*x as f64);
        nb += (*y as f64) * (*y as f64);
    }
    let denom = (na * nb).sqrt();
    if !denom.is_finite() || denom <= 0.0 || !dot.is_finite() {
        return Err(TemplateError::NonFinite);
    }
    Ok((dot / denom) as f32)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TemplateError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                TemplateError::BadLength(format!(
                    "needs {n} bytes at offset {}, has {}",
                    self.pos,
                    self.bytes.len()
                ))
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, TemplateError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, TemplateError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, TemplateError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Template {
        let v: Vec<f32> = (0..128).map(|i| ((i as f32) * 0.37).sin()).collect();
        let q = QualitySummary {
            detection_score: 0.93,
            inter_eye_px: 41.5,
            sharpness: 120.0,
            ..Default::default()
        };
        Template::face_vector("mobilefacenet-128", [7u8; 32], &v, q).unwrap()
    }

    #[test]
    fn round_trip_is_exact() {
        let t = sample();
        let bytes = t.encode();
        assert_eq!(&bytes[..4], b"STPL");
        assert_eq!(Template::decode(&bytes).unwrap(), t);
        let opaque = Template {
            payload: Payload::Opaque(vec![1, 2, 3]),
            modality: Modality::Finger,
            ..t
        };
        assert_eq!(Template::decode(&opaque.encode()).unwrap(), opaque);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(
                Template::decode(&b).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            assert!(Template::decode(&bytes[..n]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Template::decode(&longer).is_err());
    }

    #[test]
    fn unknown_version_and_magic_are_typed() {
        let mut b = sample().encode();
        b[4] = 9;
        assert_eq!(
            Template::decode(&b),
            Err(TemplateError::UnsupportedVersion {
                found: 9,
                supported: 1
            })
        );
        assert_eq!(
            Template::decode(b"JUNKJUNKJUNK"),
            Err(TemplateError::BadMagic)
        );
    }

    #[test]
    fn nan_vectors_are_refused() {
        assert_eq!(
            Template::face_vector("m", [0; 32], &[f32::NAN, 1.0], QualitySummary::default()),
            Err(TemplateError::NonFinite)
        );
    }

    #[test]
    fn comparing_across_models_or_versions_is_an_error() {
        let a = sample();
        let mut b = a.clone();
        b.model_id = "arcface-r100-512".into();
        assert!(matches!(
            a.similarity(&b),
            Err(TemplateError::ModelMismatch { .. })
        ));
        let mut c = a.clone();
        c.model_sha256 = [8u8; 32];
        assert!(matches!(
            a.similarity(&c),
            Err(TemplateError::ModelMismatch { .. })
        ));
        let mut d = a.clone();
        d.format_version = 2;
        assert!(matches!(
            a.similarity(&d),
            Err(TemplateError::VersionMismatch { .. })
        ));
        assert!((a.similarity(&a).unwrap() - 1.0).abs() < 1e-6);
    }
}
