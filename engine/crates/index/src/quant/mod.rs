//! Codecs for the stored vectors, one file each (FAISS `IndexScalarQuantizer` /
//! qdrant `encoded_vectors_u8.rs` style): raw f32, IEEE half ([`f16`]) and
//! symmetric int8 ([`sq8`]).
//!
//! ```
//! use sinhtrac_index::quant::sq8::Sq8Params;
//! let p = Sq8Params::per_vector();
//! let v = [0.6f32, -0.8];
//! let mut code = [0i8; 2];
//! let scale = p.encode(&v, &mut code);
//! assert_eq!(code, [95, -127]);
//! assert!((code[1] as f32 * scale + 0.8).abs() < 1e-6);
//! ```

pub mod f16;
pub mod pq4;
pub mod sq8;

/// How a [`crate::FlatIndex`] stores its vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Codec {
    /// 4 bytes per dimension, exact.
    F32,
    /// 2 bytes per dimension (IEEE binary16); relative error ≈ 2^-11 per value.
    F16,
    /// 1 byte per dimension, symmetric int8 with a per-vector scale; with
    /// `per_dimension`, values are first divided by a per-dimension scale
    /// learned from the first batch added (or [`crate::FlatIndex::train`]).
    Sq8 {
        /// Also scale each dimension separately.
        per_dimension: bool,
    },
}

impl Codec {
    /// Bytes per stored value.
    pub fn bytes_per_value(self) -> usize {
        match self {
            Codec::F32 => 4,
            Codec::F16 => 2,
            Codec::Sq8 { .. } => 1,
        }
    }

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Codec::F32 => "f32",
            Codec::F16 => "f16",
            Codec::Sq8 {
                per_dimension: false,
            } => "sq8",
            Codec::Sq8 {
                per_dimension: true,
            } => "sq8-dim",
        }
    }
}
