//! Minutiae templates: the extractor's output and our own persistent form.
//!
//! A [`FingerTemplate`] is plain data (image size, resolution, minutiae).
//! Search structures (MCC cylinders) are derived from it by
//! [`crate::Matcher`] and [`crate::SearchTemplate`] and never stored, so a
//! template stays valid when the matcher changes.
//!
//! The binary form ([`FingerTemplate::to_bytes`], version 2) is:
//! `"STFT"`, version `u16`, width `u16`, height `u16`, dpi `u16`, count
//! `u16`, then `count` × (x `u16`, y `u16`, angle `u16` in 2π/65536 units,
//! kind `u8`, quality `u8`), then a flag `u8` (1 = ridge-flow descriptors
//! follow, 0 = none) and, if 1, `count` × [`FLOW_BYTES`] descriptor bytes,
//! then a CRC-32 of everything before it; all little-endian. Version 1 is
//! the same without the flag and descriptors, and still reads.
//! [`FingerTemplate::from_bytes`] validates every field.

use crate::error::{FingerError, Result};
use crate::flow::{FlowDescriptor, FLOW_BYTES};
use serde::{Deserialize, Serialize};
use std::f32::consts::TAU;

/// Minutia type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MinutiaKind {
    /// A ridge ends.
    Ending,
    /// A ridge splits in two.
    Bifurcation,
    /// Type unknown (e.g. imported as "other").
    Other,
}

impl MinutiaKind {
    fn code(self) -> u8 {
        match self {
            MinutiaKind::Other => 0,
            MinutiaKind::Ending => 1,
            MinutiaKind::Bifurcation => 2,
        }
    }
    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(MinutiaKind::Other),
            1 => Some(MinutiaKind::Ending),
            2 => Some(MinutiaKind::Bifurcation),
            _ => None,
        }
    }
}

/// One minutia in image pixel coordinates (origin top-left, y down).
///
/// `angle` is in radians in `[0, 2π)`, measured as `atan2(dy, dx)` in image
/// coordinates, i.e. *clockwise* on screen from the positive x axis. For an
/// ending it points from the ridge towards its free end; for a bifurcation
/// it points from the fork along the stem, so an ending that touches a
/// neighbouring ridge under more pressure (becoming a bifurcation) keeps
/// its direction. ISO/ANSI export
/// converts to their counter-clockwise convention.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Minutia {
    /// Column.
    pub x: u16,
    /// Row.
    pub y: u16,
    /// Direction in radians, `[0, 2π)`.
    pub angle: f32,
    /// Type.
    pub kind: MinutiaKind,
    /// Quality 0..=100 (0 = unknown).
    pub quality: u8,
}

/// Minutiae of one finger impression plus the geometry they live in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FingerTemplate {
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Resolution of the coordinates in dots per inch.
    pub dpi: u16,
    /// Minutiae.
    pub minutiae: Vec<Minutia>,
    /// Ridge-flow descriptor of each minutia (same order), or empty when
    /// the source had none (ISO/ANSI records, version-1 templates): the
    /// matcher then compares cylinders alone.
    #[serde(default)]
    pub flow: Vec<FlowDescriptor>,
}

const MAGIC: &[u8; 4] = b"STFT";
/// Current version of the binary template format.
pub const TEMPLATE_VERSION: u16 = 2;
const FORMAT: &str = "sinhtrac template";
const HEADER_LEN: usize = 14;
const MINUTIA_LEN: usize = 8;
/// Most minutiae a template may hold (ISO's one-byte count allows 255).
pub const MAX_TEMPLATE_MINUTIAE: usize = 255;

impl FingerTemplate {
    /// Checks that every field is in range: non-zero size and dpi,
    /// coordinates inside the image, finite angles in `[0, 2π)`, quality
    /// ≤ 100, at most [`MAX_TEMPLATE_MINUTIAE`] minutiae, no descriptors or
    /// one per minutia.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: i64| FingerError::OutOfRange {
            format: FORMAT,
            field,
            value,
        };
        if self.width == 0 {
            return Err(bad("width", 0));
        }
        if self.height == 0 {
            return Err(bad("height", 0));
        }
        if self.dpi == 0 {
            return Err(bad("dpi", 0));
        }
        if self.minutiae.len() > MAX_TEMPLATE_MINUTIAE {
            return Err(bad("count", self.minutiae.len() as i64));
        }
        if !self.flow.is_empty() && self.flow.len() != self.minutiae.len() {
            return Err(bad("flow descriptors", self.flow.len() as i64));
        }
        for m in &self.minutiae {
            if m.x >= self.width {
                return Err(bad("x", m.x.into()));
            }
            if m.y >= self.height {
                return Err(bad("y", m.y.into()));
            }
            if !(m.angle.is_finite() && (0.0..TAU).contains(&m.angle)) {
                return Err(bad("angle", (m.angle * 1000.0) as i64));
            }
            if m.quality > 100 {
                return Err(bad("quality", m.quality.into()));
            }
        }
        Ok(())
    }

    /// Each minutia with its ridge-flow descriptor, `None` when the template
    /// has none: what code that filters or reorders minutiae works on, so
    /// the descriptors cannot fall out of step (see
    /// [`FingerTemplate::set_minutiae_with_flow`]).
    pub fn minutiae_with_flow(
        &self,
    ) -> impl Iterator<Item = (Minutia, Option<FlowDescriptor>)> + '_ {
        self.minutiae
            .iter()
            .enumerate()
            .map(|(i, m)| (*m, self.flow.get(i).copied()))
    }

    /// Replaces the minutiae and their descriptors. The matcher compares
    /// descriptors for all minutiae or none, so they are kept only when
    /// every minutia has one.
    pub fn set_minutiae_with_flow(&mut self, pairs: Vec<(Minutia, Option<FlowDescriptor>)>) {
        self.flow = pairs
            .iter()
            .map(|(_, d)| *d)
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        self.minutiae = pairs.into_iter().map(|(m, _)| m).collect();
    }

    /// Encodes to the versioned binary form (validates first).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut out =
            Vec::with_capacity(HEADER_LEN + self.minutiae.len() * (MINUTIA_LEN + FLOW_BYTES) + 5);
        out.extend_from_slice(MAGIC);
        for v in [
            TEMPLATE_VERSION,
            self.width,
            self.height,
            self.dpi,
            self.minutiae.len() as u16,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for m in &self.minutiae {
            out.extend_from_slice(&m.x.to_le_bytes());
            out.extend_from_slice(&m.y.to_le_bytes());
            out.extend_from_slice(&angle_to_u16(m.angle).to_le_bytes());
            out.push(m.kind.code());
            out.push(m.quality);
        }
        out.push(u8::from(!self.flow.is_empty()));
        for d in &self.flow {
            out.extend_from_slice(&d.0);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Decodes and validates the binary form; every defect is a typed error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let r = Reader::new(bytes, FORMAT);
        let magic = r.bytes(0, 4)?;
        if magic != MAGIC {
            return Err(FingerError::BadMagic {
                format: FORMAT,
                found: magic.to_vec(),
            });
        }
        let version = r.u16_le(4)?;
        if !(1..=TEMPLATE_VERSION).contains(&version) {
            return Err(FingerError::UnsupportedVersion {
                format: FORMAT,
                found: version.to_string(),
            });
        }
        let (width, height, dpi, count) = (
            r.u16_le(6)?,
            r.u16_le(8)?,
            r.u16_le(10)?,
            r.u16_le(12)? as usize,
        );
        // Refuse an impossible count before allocating or reading anything for it.
        if count > MAX_TEMPLATE_MINUTIAE {
            return Err(FingerError::OutOfRange {
                format: FORMAT,
                field: "count",
                value: count as i64,
            });
        }
        let records = HEADER_LEN + count * MINUTIA_LEN;
        let has_flow = match version {
            1 => false,
            _ => match r.u8(records)? {
                0 => false,
                1 => true,
                flag => {
                    return Err(FingerError::OutOfRange {
                        format: FORMAT,
                        field: "flow flag",
                        value: flag.into(),
                    })
                }
            },
        };
        let flow_at = records + usize::from(version > 1);
        let expected = flow_at + if has_flow { count * FLOW_BYTES } else { 0 } + 4;
        if bytes.len() != expected {
            return Err(FingerError::LengthMismatch {
                format: FORMAT,
                declared: expected,
                actual: bytes.len(),
            });
        }
        let body = expected - 4;
        let stored = u32::from_le_bytes([
            bytes[body],
            bytes[body + 1],
            bytes[body + 2],
            bytes[body + 3],
        ]);
        if crc32fast::hash(&bytes[..body]) != stored {
            return Err(FingerError::Checksum { format: FORMAT });
        }
        let mut minutiae = Vec::with_capacity(count);
        for i in 0..count {
            let o = HEADER_LEN + i * MINUTIA_LEN;
            let kind_code = r.u8(o + 6)?;
            let kind = MinutiaKind::from_code(kind_code).ok_or(FingerError::OutOfRange {
                format: FORMAT,
                field: "kind",
                value: kind_code.into(),
            })?;
            minutiae.push(Minutia {
                x: r.u16_le(o)?,
                y: r.u16_le(o + 2)?,
                angle: angle_from_u16(r.u16_le(o + 4)?),
                kind,
                quality: r.u8(o + 7)?,
            });
        }
        let mut flow = Vec::new();
        if has_flow {
            for i in 0..count {
                let b = r.bytes(flow_at + i * FLOW_BYTES, FLOW_BYTES)?;
                let mut d = [0u8; FLOW_BYTES];
                d.copy_from_slice(b);
                flow.push(FlowDescriptor(d));
            }
        }
        let t = FingerTemplate {
            width,
            height,
            dpi,
            minutiae,
            flow,
        };
        t.validate()?;
        Ok(t)
    }
}

fn angle_to_u16(a: f32) -> u16 {
    ((a / TAU * 65536.0).round() as u32 % 65536) as u16
}

fn angle_from_u16(v: u16) -> f32 {
    // Clamp guards the f32 rounding of 65535/65536·2π up to exactly 2π.
    (v as f32 / 65536.0 * TAU).min(TAU - 1e-6)
}

/// Bounds-checked big/little-endian reads that turn a short buffer into
/// [`FingerError::Truncated`] instead of a panic.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    format: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], format: &'static str) -> Self {
        Reader { data, format }
    }
    pub(crate) fn bytes(&self, offset: usize, n: usize) -> Result<&'a [u8]> {
        offset
            .checked_add(n)
            .and_then(|end| self.data.get(offset..end))
            .ok_or(FingerError::Truncated {
                format: self.format,
                offset,
                needed: n,
                len: self.data.len(),
            })
    }
    pub(crate) fn u8(&self, offset: usize) -> Result<u8> {
        Ok(self.bytes(offset, 1)?[0])
    }
    pub(crate) fn u16_le(&self, offset: usize) -> Result<u16> {
        let b = self.bytes(offset, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn u16_be(&self, offset: usize) -> Result<u16> {
        let b = self.bytes(offset, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32_be(&self, offset: usize) -> Result<u32> {
        let b = self.bytes(offset, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FingerTemplate {
        FingerTemplate {
            width: 300,
            height: 400,
            dpi: 500,
            minutiae: vec![
                Minutia {
                    x: 10,
                    y: 20,
                    angle: 1.0,
                    kind: MinutiaKind::Ending,
                    quality: 80,
                },
                Minutia {
                    x: 299,
                    y: 399,
                    angle: 6.2,
                    kind: MinutiaKind::Bifurcation,
                    quality: 0,
                },
            ],
            flow: vec![
                FlowDescriptor([0x21; FLOW_BYTES]),
                FlowDescriptor([0xf3; FLOW_BYTES]),
            ],
        }
    }

    #[test]
    fn round_trip() {
        let t = sample();
        let back = FingerTemplate::from_bytes(&t.to_bytes().unwrap()).unwrap();
        assert_eq!(back.minutiae.len(), 2);
        for (a, b) in t.minutiae.iter().zip(&back.minutiae) {
            assert_eq!((a.x, a.y, a.kind, a.quality), (b.x, b.y, b.kind, b.quality));
            assert!((a.angle - b.angle).abs() < 1e-3);
        }
        assert_eq!(back.flow, t.flow);
        let bare = FingerTemplate {
            flow: Vec::new(),
            ..t.clone()
        };
        let back = FingerTemplate::from_bytes(&bare.to_bytes().unwrap()).unwrap();
        assert!(back.flow.is_empty());
        assert_eq!(back.minutiae.len(), 2);
    }

    #[test]
    fn minutiae_and_descriptors_move_together() {
        let mut t = sample();
        let mut pairs: Vec<_> = t.minutiae_with_flow().collect();
        pairs.reverse();
        t.set_minutiae_with_flow(pairs.clone());
        assert_eq!(t.minutiae[0].x, 299);
        assert_eq!(t.flow, vec![sample().flow[1], sample().flow[0]]);
        // One minutia without a descriptor: none are kept.
        pairs[0].1 = None;
        t.set_minutiae_with_flow(pairs);
        assert_eq!((t.minutiae.len(), t.flow.len()), (2, 0));
        assert!(t.minutiae_with_flow().all(|(_, d)| d.is_none()));
    }

    /// Galleries written before descriptors (version 1: no flag byte) still read.
    #[test]
    fn reads_version_1() {
        let t = sample();
        let mut v1 = Vec::new();
        v1.extend_from_slice(MAGIC);
        for v in [1u16, t.width, t.height, t.dpi, 2] {
            v1.extend_from_slice(&v.to_le_bytes());
        }
        for m in &t.minutiae {
            v1.extend_from_slice(&m.x.to_le_bytes());
            v1.extend_from_slice(&m.y.to_le_bytes());
            v1.extend_from_slice(&angle_to_u16(m.angle).to_le_bytes());
            v1.extend([m.kind.code(), m.quality]);
        }
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        let back = FingerTemplate::from_bytes(&v1).unwrap();
        assert_eq!((back.minutiae.len(), back.flow.len()), (2, 0));
        assert_eq!(back.minutiae[1].kind, MinutiaKind::Bifurcation);
    }

    #[test]
    fn rejects_bad_descriptor_fields() {
        let mut t = sample();
        t.flow.pop();
        assert!(matches!(
            t.to_bytes(),
            Err(FingerError::OutOfRange {
                field: "flow descriptors",
                value: 1,
                ..
            })
        ));
        let mut bytes = sample().to_bytes().unwrap();
        let flag_at = HEADER_LEN + 2 * MINUTIA_LEN;
        bytes[flag_at] = 2;
        let body = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            FingerTemplate::from_bytes(&bytes),
            Err(FingerError::OutOfRange {
                field: "flow flag",
                value: 2,
                ..
            })
        ));
        // Flag says descriptors, but they are cut off: a length error.
        let mut cut = sample().to_bytes().unwrap();
        cut.truncate(flag_at + 1 + FLOW_BYTES);
        let crc = crc32fast::hash(&cut);
        cut.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            FingerTemplate::from_bytes(&cut),
            Err(FingerError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn rejects_corruption() {
        let bytes = sample().to_bytes().unwrap();
        let mut flipped = bytes.clone();
        flipped[16] ^= 0xff;
        assert!(matches!(
            FingerTemplate::from_bytes(&flipped),
            Err(FingerError::Checksum { .. })
        ));
        assert!(matches!(
            FingerTemplate::from_bytes(&bytes[..10]),
            Err(FingerError::Truncated { .. })
        ));
        assert!(matches!(
            FingerTemplate::from_bytes(b"NOPE0000000000"),
            Err(FingerError::BadMagic { .. })
        ));
        // A count no template may hold is refused before anything is read for it.
        let mut huge = bytes.clone();
        huge[12..14].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            FingerTemplate::from_bytes(&huge),
            Err(FingerError::OutOfRange {
                field: "count",
                value: 65535,
                ..
            })
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            FingerTemplate::from_bytes(&longer),
            Err(FingerError::LengthMismatch { .. })
        ));
    }
}
