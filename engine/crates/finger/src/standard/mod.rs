//! Standard finger minutiae records: ISO/IEC 19794-2:2005 and
//! ANSI/INCITS 378-2004, one codec file per standard version.
//!
//! Both standards share the finger-view and minutia layout and differ in
//! the header (ANSI adds a CBEFF product id and a 2-byte length) and in the
//! angle unit (ISO: 360/256°, ANSI: 2°). Both put the origin top-left and
//! measure angles counter-clockwise; [`crate::Minutia`] measures clockwise
//! (image `atan2`), so the codecs negate angles.
//!
//! ```
//! use sinhtrac_finger::{FingerRecord, FingerView, FingerPosition, FingerTemplate,
//!     Minutia, MinutiaKind, Standard};
//! let template = FingerTemplate { width: 300, height: 300, dpi: 500, minutiae: vec![
//!     Minutia { x: 100, y: 120, angle: 0.5, kind: MinutiaKind::Ending, quality: 60 }],
//!     flow: vec![] };
//! let record = FingerRecord::single(FingerPosition::RIGHT_INDEX, template);
//! let bytes = record.encode(Standard::Iso19794_2_2005)?;
//! let back = FingerRecord::decode(&bytes, Standard::Iso19794_2_2005)?;
//! assert_eq!(back.views[0].position, FingerPosition::RIGHT_INDEX);
//! # Ok::<(), sinhtrac_finger::FingerError>(())
//! ```

mod ansi378_2004;
mod iso19794_2_2005;

use crate::error::{FingerError, Result};
use crate::template::{FingerTemplate, Minutia, MinutiaKind, Reader};
use serde::{Deserialize, Serialize};
use std::f32::consts::TAU;

/// Which standard a record follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Standard {
    /// ISO/IEC 19794-2:2005 finger minutiae record.
    Iso19794_2_2005,
    /// ANSI/INCITS 378-2004 finger minutiae record.
    Ansi378_2004,
}

/// Finger position code (ISO/IEC 19794-2 table / ANSI 378): 0 unknown,
/// 1–5 right thumb … little, 6–10 left thumb … little.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FingerPosition(u8);

impl FingerPosition {
    /// Position unknown.
    pub const UNKNOWN: Self = Self(0);
    /// Right thumb.
    pub const RIGHT_THUMB: Self = Self(1);
    /// Right index finger.
    pub const RIGHT_INDEX: Self = Self(2);
    /// Right middle finger.
    pub const RIGHT_MIDDLE: Self = Self(3);
    /// Right ring finger.
    pub const RIGHT_RING: Self = Self(4);
    /// Right little finger.
    pub const RIGHT_LITTLE: Self = Self(5);
    /// Left thumb.
    pub const LEFT_THUMB: Self = Self(6);
    /// Left index finger.
    pub const LEFT_INDEX: Self = Self(7);
    /// Left middle finger.
    pub const LEFT_MIDDLE: Self = Self(8);
    /// Left ring finger.
    pub const LEFT_RING: Self = Self(9);
    /// Left little finger.
    pub const LEFT_LITTLE: Self = Self(10);

    /// Checked constructor: codes 0..=10.
    pub fn new(code: u8) -> Result<Self> {
        if code <= 10 {
            Ok(Self(code))
        } else {
            Err(FingerError::OutOfRange {
                format: "finger position",
                field: "position",
                value: code.into(),
            })
        }
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        self.0
    }
}

/// One finger view (impression) in a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FingerView {
    /// Finger position.
    pub position: FingerPosition,
    /// View number (0..=15) when one finger has several views.
    pub view_number: u8,
    /// Impression type (0 live-scan plain, 1 live-scan rolled, 2/3 non-live
    /// plain/rolled, 8 swipe).
    pub impression_type: u8,
    /// Finger quality 0..=100.
    pub quality: u8,
    /// The minutiae; width/height/dpi repeat the record's.
    pub template: FingerTemplate,
}

/// A multi-finger minutiae record (up to one view per position and view
/// number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FingerRecord {
    /// Image width in pixels (shared by all views, as in the standards).
    pub width: u16,
    /// Image height.
    pub height: u16,
    /// Resolution in dots per inch.
    pub dpi: u16,
    /// Capture equipment id (12 bits).
    pub equipment_id: u16,
    /// Views.
    pub views: Vec<FingerView>,
}

impl FingerRecord {
    /// A record holding one live-scan plain view of `template`.
    pub fn single(position: FingerPosition, template: FingerTemplate) -> Self {
        let quality = average_quality(&template);
        FingerRecord {
            width: template.width,
            height: template.height,
            dpi: template.dpi,
            equipment_id: 0,
            views: vec![FingerView {
                position,
                view_number: 0,
                impression_type: 0,
                quality,
                template,
            }],
        }
    }

    /// Encodes in the given standard. Validates first: a record this
    /// function accepts always decodes again.
    pub fn encode(&self, standard: Standard) -> Result<Vec<u8>> {
        match standard {
            Standard::Iso19794_2_2005 => iso19794_2_2005::encode(self),
            Standard::Ansi378_2004 => ansi378_2004::encode(self),
        }
    }

    /// Parses and validates a record in the given standard.
    pub fn decode(bytes: &[u8], standard: Standard) -> Result<Self> {
        match standard {
            Standard::Iso19794_2_2005 => iso19794_2_2005::decode(bytes),
            Standard::Ansi378_2004 => ansi378_2004::decode(bytes),
        }
    }

    /// The first view at `position`, if any.
    pub fn finger(&self, position: FingerPosition) -> Option<&FingerView> {
        self.views.iter().find(|v| v.position == position)
    }
}

fn average_quality(t: &FingerTemplate) -> u8 {
    if t.minutiae.is_empty() {
        return 0;
    }
    let sum: u32 = t.minutiae.iter().map(|m| u32::from(m.quality)).sum();
    (sum / t.minutiae.len() as u32).min(100) as u8
}

/// Angle unit of a standard, in radians per code step, and the largest code.
#[derive(Clone, Copy)]
pub(crate) struct AngleUnit {
    pub(crate) step: f32,
    pub(crate) max_code: u8,
}

pub(crate) const VIEW_HEADER_LEN: usize = 4;
pub(crate) const MINUTIA_LEN: usize = 6;

fn dpi_to_ppcm(dpi: u16) -> u16 {
    ((f32::from(dpi) / 2.54).round() as u32).min(u32::from(u16::MAX)) as u16
}

fn ppcm_to_dpi(ppcm: u16) -> u16 {
    ((f32::from(ppcm) * 2.54).round() as u32).min(u32::from(u16::MAX)) as u16
}

/// Checks record-level invariants shared by both standards.
pub(crate) fn validate_record(r: &FingerRecord, format: &'static str) -> Result<()> {
    let bad = |field, value: i64| FingerError::OutOfRange {
        format,
        field,
        value,
    };
    if r.width == 0 || r.width > 0x3fff {
        return Err(bad("width", r.width.into()));
    }
    if r.height == 0 || r.height > 0x3fff {
        return Err(bad("height", r.height.into()));
    }
    if r.dpi == 0 {
        return Err(bad("resolution", 0));
    }
    if r.equipment_id > 0x0fff {
        return Err(bad("equipment_id", r.equipment_id.into()));
    }
    if r.views.is_empty() || r.views.len() > 255 {
        return Err(bad("finger views", r.views.len() as i64));
    }
    for (i, v) in r.views.iter().enumerate() {
        if v.position.0 > 10 {
            return Err(bad("finger position", v.position.0.into()));
        }
        if v.view_number > 15 {
            return Err(bad("view number", v.view_number.into()));
        }
        if !matches!(v.impression_type, 0..=3 | 8) {
            return Err(bad("impression type", v.impression_type.into()));
        }
        if v.quality > 100 {
            return Err(bad("finger quality", v.quality.into()));
        }
        if r.views[..i]
            .iter()
            .any(|w| w.position == v.position && w.view_number == v.view_number)
        {
            return Err(bad("duplicate view", v.position.0.into()));
        }
        let t = &v.template;
        if t.minutiae.len() > 255 {
            return Err(bad("minutiae count", t.minutiae.len() as i64));
        }
        for m in &t.minutiae {
            if m.x >= r.width {
                return Err(bad("minutia x", m.x.into()));
            }
            if m.y >= r.height {
                return Err(bad("minutia y", m.y.into()));
            }
            if m.quality > 100 {
                return Err(bad("minutia quality", m.quality.into()));
            }
        }
        t.validate()?;
    }
    Ok(())
}

/// Writes the common header fields after the length/product id part.
pub(crate) fn write_geometry(out: &mut Vec<u8>, r: &FingerRecord) {
    // Compliance nibble 0: no certification claimed.
    out.extend_from_slice(&(r.equipment_id & 0x0fff).to_be_bytes());
    out.extend_from_slice(&r.width.to_be_bytes());
    out.extend_from_slice(&r.height.to_be_bytes());
    let ppcm = dpi_to_ppcm(r.dpi);
    out.extend_from_slice(&ppcm.to_be_bytes());
    out.extend_from_slice(&ppcm.to_be_bytes());
    out.push(r.views.len() as u8);
    out.push(0);
}

/// Writes all finger views, each followed by an empty extended-data block.
pub(crate) fn write_views(out: &mut Vec<u8>, r: &FingerRecord, unit: AngleUnit) {
    for v in &r.views {
        out.push(v.position.0);
        out.push((v.view_number << 4) | (v.impression_type & 0x0f));
        out.push(v.quality);
        out.push(v.template.minutiae.len() as u8);
        for m in &v.template.minutiae {
            let kind: u16 = match m.kind {
                MinutiaKind::Other => 0,
                MinutiaKind::Ending => 1,
                MinutiaKind::Bifurcation => 2,
            };
            out.extend_from_slice(&((kind << 14) | (m.x & 0x3fff)).to_be_bytes());
            out.extend_from_slice(&(m.y & 0x3fff).to_be_bytes());
            // Standards count counter-clockwise; ours clockwise.
            let ccw = (TAU - m.angle).rem_euclid(TAU);
            let code = (ccw / unit.step).round() as u32 % (u32::from(unit.max_code) + 1);
            out.push(code as u8);
            out.push(m.quality);
        }
        out.extend_from_slice(&0u16.to_be_bytes());
    }
}

/// Parsed common header.
pub(crate) struct Geometry {
    pub(crate) equipment_id: u16,
    pub(crate) width: u16,
    pub(crate) height: u16,
    pub(crate) dpi: u16,
    pub(crate) views: usize,
}

pub(crate) fn read_geometry(rd: &Reader<'_>, at: usize, format: &'static str) -> Result<Geometry> {
    let equipment = rd.u16_be(at)?;
    let width = rd.u16_be(at + 2)?;
    let height = rd.u16_be(at + 4)?;
    let xres = rd.u16_be(at + 6)?;
    let yres = rd.u16_be(at + 8)?;
    let views = rd.u8(at + 10)? as usize;
    if xres == 0 || yres == 0 {
        return Err(FingerError::OutOfRange {
            format,
            field: "resolution",
            value: 0,
        });
    }
    if xres != yres {
        // Anisotropic records would need per-axis scaling in the matcher;
        // no sensor we know of produces them, so refuse rather than distort.
        return Err(FingerError::OutOfRange {
            format,
            field: "y resolution",
            value: yres.into(),
        });
    }
    Ok(Geometry {
        equipment_id: equipment & 0x0fff,
        width,
        height,
        dpi: ppcm_to_dpi(xres),
        views,
    })
}

/// Reads `g.views` finger views starting at `at`; returns them and the
/// offset after the last one.
pub(crate) fn read_views(
    rd: &Reader<'_>,
    mut at: usize,
    g: &Geometry,
    unit: AngleUnit,
    format: &'static str,
) -> Result<(Vec<FingerView>, usize)> {
    let bad = |field, value: i64| FingerError::OutOfRange {
        format,
        field,
        value,
    };
    let mut views = Vec::with_capacity(g.views);
    for _ in 0..g.views {
        let position = rd.u8(at)?;
        let vi = rd.u8(at + 1)?;
        let quality = rd.u8(at + 2)?;
        let count = rd.u8(at + 3)? as usize;
        at += VIEW_HEADER_LEN;
        let mut minutiae = Vec::with_capacity(count);
        for _ in 0..count {
            let xw = rd.u16_be(at)?;
            let yw = rd.u16_be(at + 2)?;
            let a = rd.u8(at + 4)?;
            let q = rd.u8(at + 5)?;
            at += MINUTIA_LEN;
            let kind = match xw >> 14 {
                0 => MinutiaKind::Other,
                1 => MinutiaKind::Ending,
                2 => MinutiaKind::Bifurcation,
                t => return Err(bad("minutia type", t.into())),
            };
            if a > unit.max_code {
                return Err(bad("minutia angle", a.into()));
            }
            let ccw = f32::from(a) * unit.step;
            let angle = (TAU - ccw).rem_euclid(TAU);
            minutiae.push(Minutia {
                x: xw & 0x3fff,
                y: yw & 0x3fff,
                // rem_euclid can return exactly TAU for tiny negatives.
                angle: if angle >= TAU { 0.0 } else { angle },
                kind,
                quality: q,
            });
        }
        let ext = rd.u16_be(at)? as usize;
        at += 2;
        // Extended data (ridge counts, cores, deltas) is skipped but must fit.
        rd.bytes(at, ext)?;
        at += ext;
        views.push(FingerView {
            position: FingerPosition(position),
            view_number: vi >> 4,
            impression_type: vi & 0x0f,
            quality,
            template: FingerTemplate {
                width: g.width,
                height: g.height,
                dpi: g.dpi,
                minutiae,
                // The standard records carry minutiae only.
                flow: Vec::new(),
            },
        });
    }
    Ok((views, at))
}

pub(crate) fn check_version(rd: &Reader<'_>, format: &'static str) -> Result<()> {
    let magic = rd.bytes(0, 4)?;
    if magic != b"FMR\0" {
        return Err(FingerError::BadMagic {
            format,
            found: magic.to_vec(),
        });
    }
    let version = rd.bytes(4, 4)?;
    if version != b" 20\0" {
        return Err(FingerError::UnsupportedVersion {
            format,
            found: String::from_utf8_lossy(version).into_owned(),
        });
    }
    Ok(())
}

pub(crate) fn record_body_len(r: &FingerRecord) -> usize {
    r.views
        .iter()
        .map(|v| VIEW_HEADER_LEN + v.template.minutiae.len() * MINUTIA_LEN + 2)
        .sum()
}
