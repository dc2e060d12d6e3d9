//! ANSI/INCITS 378-2004 finger minutiae record codec.
//!
//! Header (26 bytes, big-endian): `"FMR\0"`, `" 20\0"`, record length u16
//! (or 0 followed by a u32 length when over 65535: 30 bytes), CBEFF product
//! id u32, capture equipment u16, width u16, height u16, x/y resolution u16
//! (pixels per cm), number of views u8, reserved u8. Angle unit 2°.

use super::{
    check_version, read_geometry, read_views, record_body_len, validate_record, write_geometry,
    write_views, AngleUnit, FingerRecord,
};
use crate::error::{FingerError, Result};
use crate::template::Reader;
use std::f32::consts::PI;

const FORMAT: &str = "ANSI/INCITS 378-2004";
const SHORT_HEADER_LEN: usize = 26;
const UNIT: AngleUnit = AngleUnit {
    step: PI / 90.0,
    max_code: 179,
};

pub(super) fn encode(r: &FingerRecord) -> Result<Vec<u8>> {
    validate_record(r, FORMAT)?;
    let body = record_body_len(r);
    let short_len = SHORT_HEADER_LEN + body;
    let mut out = Vec::with_capacity(short_len + 4);
    out.extend_from_slice(b"FMR\0 20\0");
    if short_len <= usize::from(u16::MAX) {
        out.extend_from_slice(&(short_len as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&((short_len + 4) as u32).to_be_bytes());
    }
    // CBEFF product identifier: owner 0 / type 0 = unregistered.
    out.extend_from_slice(&0u32.to_be_bytes());
    write_geometry(&mut out, r);
    write_views(&mut out, r, UNIT);
    Ok(out)
}

pub(super) fn decode(bytes: &[u8]) -> Result<FingerRecord> {
    let rd = Reader::new(bytes, FORMAT);
    check_version(&rd, FORMAT)?;
    let short = rd.u16_be(8)? as usize;
    let (declared, at) = if short == 0 {
        (rd.u32_be(10)? as usize, 14)
    } else {
        (short, 10)
    };
    if declared != bytes.len() {
        return Err(FingerError::LengthMismatch {
            format: FORMAT,
            declared,
            actual: bytes.len(),
        });
    }
    // Skip the CBEFF product identifier.
    let g = read_geometry(&rd, at + 4, FORMAT)?;
    let (views, end) = read_views(&rd, at + 16, &g, UNIT, FORMAT)?;
    if end != bytes.len() {
        return Err(FingerError::LengthMismatch {
            format: FORMAT,
            declared: end,
            actual: bytes.len(),
        });
    }
    let rec = FingerRecord {
        width: g.width,
        height: g.height,
        dpi: g.dpi,
        equipment_id: g.equipment_id,
        views,
    };
    validate_record(&rec, FORMAT)?;
    Ok(rec)
}
