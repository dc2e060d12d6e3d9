//! Data types of the gallery and the validation of everything a caller passes in.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Longest subject id accepted, in bytes.
pub const MAX_SUBJECT_ID_LEN: usize = 64;
/// Longest tenant id accepted, in bytes.
pub const MAX_TENANT_LEN: usize = 64;
/// Longest model id accepted, in bytes.
pub const MAX_MODEL_ID_LEN: usize = 128;
/// Largest template accepted, in bytes. Real templates are 0.5–4 KiB; the cap
/// stops a bad caller from filling the disk through one request.
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;
/// Largest display metadata accepted, as serialised JSON bytes.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Highest ISO/IEC 19794-2 finger position code (0 = unknown, 1–10 = fingers).
pub const MAX_FINGER_POSITION: u8 = 10;

/// Stable numeric key of one template row. Keys are never reused, even after
/// [`crate::Store::compact`], so an in-memory index may map rows to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateKey(pub i64);

/// Stable numeric key of a subject row (the same for all its templates);
/// never reused. Lets an index tell templates of one subject apart from
/// others without carrying subject id strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubjectKey(pub i64);

/// Stable numeric key of a tenant, assigned at its first write and never
/// reused: small (1, 2, 3…), so an index can pack it into a row tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantKey(pub i64);

/// Value of the store's monotonic change counter. Every committed write
/// transaction takes a new, higher value; values may skip (not dense).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u64);

/// Biometric modality of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Modality {
    /// Face embedding.
    Face,
    /// Fingerprint template; carries an ISO 19794-2 finger position.
    Finger,
}

impl Modality {
    /// On-disk code. Part of the file format: never renumber.
    pub(crate) fn code(self) -> i64 {
        match self {
            Modality::Face => 1,
            Modality::Finger => 2,
        }
    }

    pub(crate) fn from_code(code: i64) -> Result<Self> {
        match code {
            1 => Ok(Modality::Face),
            2 => Ok(Modality::Finger),
            other => Err(Error::Corrupt(format!("unknown modality code {other}"))),
        }
    }
}

/// A template to store. The bytes are opaque here: the engine's versioned
/// template codec produced them and validates them on decode.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTemplate {
    /// Face or finger.
    pub modality: Modality,
    /// ISO 19794-2 finger position 0–10 for fingers, `None` for faces.
    pub finger_position: Option<u8>,
    /// Id of the model (and version) that produced the template.
    pub model_id: String,
    /// Encoded template.
    pub data: Vec<u8>,
    /// Quality score from the extractor; must be finite.
    pub quality: f32,
}

impl NewTemplate {
    /// A face template.
    pub fn face(model_id: impl Into<String>, data: Vec<u8>, quality: f32) -> Self {
        NewTemplate {
            modality: Modality::Face,
            finger_position: None,
            model_id: model_id.into(),
            data,
            quality,
        }
    }

    /// A fingerprint template at ISO 19794-2 finger position `position` (0–10).
    pub fn finger(position: u8, model_id: impl Into<String>, data: Vec<u8>, quality: f32) -> Self {
        NewTemplate {
            modality: Modality::Finger,
            finger_position: Some(position),
            model_id: model_id.into(),
            data,
            quality,
        }
    }

    pub(crate) fn validate(&self, index: usize) -> Result<()> {
        let bad = |reason| Err(Error::InvalidTemplate { index, reason });
        match (self.modality, self.finger_position) {
            (Modality::Face, Some(_)) => return bad("a face template has no finger position"),
            (Modality::Finger, None) => return bad("a finger template needs a finger position"),
            (Modality::Finger, Some(p)) if p > MAX_FINGER_POSITION => {
                return bad("finger position must be 0-10 (ISO/IEC 19794-2)")
            }
            _ => {}
        }
        if let Err(reason) = check_model_id(&self.model_id) {
            return bad(reason);
        }
        if self.data.is_empty() {
            return bad("template data is empty");
        }
        if self.data.len() > MAX_TEMPLATE_BYTES {
            return bad("template data is larger than MAX_TEMPLATE_BYTES");
        }
        if !self.quality.is_finite() {
            return bad("quality must be a finite number");
        }
        Ok(())
    }
}

/// A subject to enrol (or the new content of a replaced one).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewSubject {
    /// External id: national ID number, claim reference. See [`validate_subject_id`].
    pub subject_id: String,
    /// Optional display metadata (name, document type…), small key/value pairs.
    pub metadata: BTreeMap<String, String>,
    /// At least one template.
    pub templates: Vec<NewTemplate>,
}

/// One stored template, as read back by [`crate::Store::get`].
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateRecord {
    /// Stable row key.
    pub key: TemplateKey,
    /// Face or finger.
    pub modality: Modality,
    /// ISO 19794-2 finger position for fingers.
    pub finger_position: Option<u8>,
    /// Model that produced it.
    pub model_id: String,
    /// Encoded template.
    pub data: Vec<u8>,
    /// Extractor quality.
    pub quality: f32,
    /// Creation time, Unix epoch milliseconds (UTC).
    pub created_at_ms: i64,
    /// Last update time, Unix epoch milliseconds (UTC).
    pub updated_at_ms: i64,
}

/// One live subject with all its live templates.
#[derive(Clone, Debug, PartialEq)]
pub struct SubjectRecord {
    /// External id.
    pub subject_id: String,
    /// Display metadata.
    pub metadata: BTreeMap<String, String>,
    /// Creation time, Unix epoch milliseconds (UTC).
    pub created_at_ms: i64,
    /// Last update time, Unix epoch milliseconds (UTC).
    pub updated_at_ms: i64,
    /// Live templates in key order.
    pub templates: Vec<TemplateRecord>,
}

/// One row of a [`Page`]: a subject without its template bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct SubjectSummary {
    /// External id.
    pub subject_id: String,
    /// Display metadata.
    pub metadata: BTreeMap<String, String>,
    /// Number of live templates.
    pub template_count: u64,
    /// Creation time, Unix epoch milliseconds (UTC).
    pub created_at_ms: i64,
    /// Last update time, Unix epoch milliseconds (UTC).
    pub updated_at_ms: i64,
}

/// One page of [`crate::Store::list`].
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// Subjects in ascending subject-id order.
    pub subjects: Vec<SubjectSummary>,
    /// Opaque token for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Counts for one tenant, from [`crate::Store::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantStats {
    /// Live subjects.
    pub subjects: u64,
    /// Live face templates.
    pub face_templates: u64,
    /// Live finger templates.
    pub finger_templates: u64,
    /// Deleted subjects still waiting for [`crate::Store::compact`].
    pub tombstoned_subjects: u64,
    /// Deleted templates still waiting for [`crate::Store::compact`].
    pub tombstoned_templates: u64,
    /// Store generation the counts were read at.
    pub generation: Generation,
}

/// What a committed write did, for keeping an in-memory index in step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteReceipt {
    /// Generation the write committed at.
    pub generation: Generation,
    /// Keys of templates the write added.
    pub added: Vec<TemplateKey>,
    /// Keys of templates the write removed (tombstoned).
    pub removed: Vec<TemplateKey>,
}

/// Checks an external subject id: 1–64 bytes of ASCII letters, digits and
/// `-_.:/`. No spaces, no control or non-ASCII characters: the id is a key,
/// and look-alike Unicode forms of one national ID number must not become
/// two subjects.
pub fn validate_subject_id(id: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidSubjectId { reason });
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > MAX_SUBJECT_ID_LEN {
        return bad("longer than 64 bytes");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
    {
        return bad("only ASCII letters, digits and -_.:/ are allowed");
    }
    Ok(())
}

/// Checks a tenant id: 1–64 bytes of ASCII letters, digits and `-_.`.
pub fn validate_tenant(tenant: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidTenant { reason });
    if tenant.is_empty() {
        return bad("empty");
    }
    if tenant.len() > MAX_TENANT_LEN {
        return bad("longer than 64 bytes");
    }
    if !tenant
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return bad("only ASCII letters, digits and -_. are allowed");
    }
    Ok(())
}

pub(crate) fn check_model_id(model_id: &str) -> std::result::Result<(), &'static str> {
    if model_id.is_empty() {
        return Err("model id is empty");
    }
    if model_id.len() > MAX_MODEL_ID_LEN {
        return Err("model id is longer than 128 bytes");
    }
    if !model_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("model id must be printable ASCII without spaces");
    }
    Ok(())
}

/// Serialises metadata for storage; `None` when empty so no JSON is stored
/// for subjects without metadata.
pub(crate) fn encode_metadata(metadata: &BTreeMap<String, String>) -> Result<Option<String>> {
    if metadata.is_empty() {
        return Ok(None);
    }
    if metadata.keys().any(|k| k.is_empty()) {
        return Err(Error::InvalidMetadata {
            reason: "empty key",
        });
    }
    let json = serde_json::to_string(metadata).map_err(|_| Error::InvalidMetadata {
        reason: "not serialisable",
    })?;
    if json.len() > MAX_METADATA_BYTES {
        return Err(Error::InvalidMetadata {
            reason: "larger than 4096 bytes as JSON",
        });
    }
    Ok(Some(json))
}

pub(crate) fn decode_metadata(json: Option<&str>) -> Result<BTreeMap<String, String>> {
    match json {
        None => Ok(BTreeMap::new()),
        Some(s) => serde_json::from_str(s)
            .map_err(|e| Error::Corrupt(format!("subject metadata is not a JSON string map: {e}"))),
    }
}

pub(crate) fn validate_subject(subject: &NewSubject) -> Result<Option<String>> {
    validate_subject_id(&subject.subject_id)?;
    if subject.templates.is_empty() {
        return Err(Error::NoTemplates);
    }
    for (i, t) in subject.templates.iter().enumerate() {
        t.validate(i)?;
    }
    encode_metadata(&subject.metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_ids() {
        for ok in ["079203001234", "BHXH-2024/000123", "a", "x.y_z:1"] {
            assert!(validate_subject_id(ok).is_ok(), "{ok}");
        }
        let long = "1".repeat(65);
        for bad in [
            "",
            " 123",
            "12 3",
            "ａ１",
            "12\n",
            "a;b",
            "'--",
            long.as_str(),
        ] {
            assert!(
                matches!(
                    validate_subject_id(bad),
                    Err(Error::InvalidSubjectId { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(validate_subject_id(&"1".repeat(64)).is_ok());
    }

    #[test]
    fn templates() {
        let ok = NewTemplate::face("mfn-128", vec![1], 0.5);
        assert!(ok.validate(0).is_ok());
        assert!(NewTemplate::finger(10, "mcc", vec![1], 40.0)
            .validate(0)
            .is_ok());
        let cases = [
            NewTemplate::finger(11, "mcc", vec![1], 1.0),
            NewTemplate {
                finger_position: Some(1),
                ..ok.clone()
            },
            NewTemplate {
                modality: Modality::Finger,
                ..ok.clone()
            },
            NewTemplate::face("", vec![1], 0.5),
            NewTemplate::face("a b", vec![1], 0.5),
            NewTemplate::face("m", vec![], 0.5),
            NewTemplate::face("m", vec![0; MAX_TEMPLATE_BYTES + 1], 0.5),
            NewTemplate::face("m", vec![1], f32::NAN),
        ];
        for (i, t) in cases.iter().enumerate() {
            assert!(
                matches!(t.validate(3), Err(Error::InvalidTemplate { index: 3, .. })),
                "case {i}"
            );
        }
    }

    #[test]
    fn metadata_roundtrip_and_limits() {
        let mut m = BTreeMap::new();
        assert_eq!(encode_metadata(&m).unwrap(), None);
        m.insert("name".to_owned(), "Nguyễn Văn A".to_owned());
        let json = encode_metadata(&m).unwrap();
        assert_eq!(decode_metadata(json.as_deref()).unwrap(), m);
        m.insert("big".to_owned(), "x".repeat(MAX_METADATA_BYTES));
        assert!(matches!(
            encode_metadata(&m),
            Err(Error::InvalidMetadata { .. })
        ));
    }
}
