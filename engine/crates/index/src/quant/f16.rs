//! IEEE binary16 codec (via the `half` crate); codes are the raw `u16` bits so
//! the F16C kernels can load them directly.

use half::f16;

/// Encodes `v` into `out` (round to nearest even).
pub fn encode(v: &[f32], out: &mut [u16]) {
    assert_eq!(v.len(), out.len(), "f16::encode: length mismatch");
    for (o, x) in out.iter_mut().zip(v) {
        *o = f16::from_f32(*x).to_bits();
    }
}

/// Decodes `code` into `out`.
pub fn decode(code: &[u16], out: &mut [f32]) {
    assert_eq!(code.len(), out.len(), "f16::decode: length mismatch");
    for (o, c) in out.iter_mut().zip(code) {
        *o = f16::from_bits(*c).to_f32();
    }
}
