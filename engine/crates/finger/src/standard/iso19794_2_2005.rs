//! ISO/IEC 19794-2:2005 finger minutiae record codec.
//!
//! Header (24 bytes, big-endian): `"FMR\0"`, `" 20\0"`, record length u32,
//! capture equipment u16, width u16, height u16, x/y resolution u16
//! (pixels per cm), number of views u8, reserved u8. Angle unit 360/256°.

use super::{
    check_version, read_geometry, read_views, record_body_len, validate_record, write_geometry,
    write_views, AngleUnit, FingerRecord,
};
use crate::error::{FingerError, Result};
use crate::template::Reader;
use std::f32::consts::TAU;

const FORMAT: &str = "ISO/IEC 19794-2:2005";
const HEADER_LEN: usize = 24;
const UNIT: AngleUnit = AngleUnit {
    step: TAU / 256.0,
    max_code: 255,
};

pub(super) fn encode(r: &FingerRecord) -> Result<Vec<u8>> {
    validate_record(r, FORMAT)?;
    let len = HEADER_LEN + record_body_len(r);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(b"FMR\0 20\0");
    out.extend_from_slice(&(len as u32).to_be_bytes());
    write_geometry(&mut out, r);
    write_views(&mut out, r, UNIT);
    debug_assert_eq!(out.len(), len);
    Ok(out)
}

pub(super) fn decode(bytes: &[u8]) -> Result<FingerRecord> {
    let rd = Reader::new(bytes, FORMAT);
    check_version(&rd, FORMAT)?;
    let declared = rd.u32_be(8)? as usize;
    if declared != bytes.len() {
        return Err(FingerError::LengthMismatch {
            format: FORMAT,
            declared,
            actual: bytes.len(),
        });
    }
    let g = read_geometry(&rd, 12, FORMAT)?;
    let (views, end) = read_views(&rd, HEADER_LEN, &g, UNIT, FORMAT)?;
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
