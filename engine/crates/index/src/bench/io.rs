//! Readers for `.fvecs` (TEXMEX/ANN-benchmarks) and `.npy` (NumPy, 2-D `<f4`).

use std::path::Path;

use crate::error::{IndexError, Result};

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn bad(path: &Path, msg: impl Into<String>) -> IndexError {
    IndexError::Format {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Reads a `.fvecs` file: records of `i32 dim` + `dim × f32`, little-endian.
/// Returns `(values, dim)`.
pub fn read_fvecs(path: &Path) -> Result<(Vec<f32>, usize)> {
    let bytes = read(path)?;
    if bytes.len() < 4 {
        return Err(bad(path, "file shorter than one header"));
    }
    let d = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if d <= 0 || d > 1 << 16 {
        return Err(bad(path, format!("dimension {d}")));
    }
    let dim = d as usize;
    let rec = 4 + 4 * dim;
    if bytes.len() % rec != 0 {
        return Err(bad(
            path,
            format!("size {} not a multiple of record size {rec}", bytes.len()),
        ));
    }
    let mut out = Vec::with_capacity(bytes.len() / rec * dim);
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        if r[..4] != bytes[..4] {
            return Err(bad(path, format!("record {i} has a different dimension")));
        }
        out.extend(
            r[4..]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    Ok((out, dim))
}

/// Writes a `.fvecs` file.
pub fn write_fvecs(path: &Path, values: &[f32], dim: usize) -> Result<()> {
    if dim == 0 || !values.len().is_multiple_of(dim) {
        return Err(IndexError::InvalidArgument(
            "write_fvecs: values not a multiple of dim".into(),
        ));
    }
    let mut out = Vec::with_capacity(values.len() * 4 + values.len() / dim * 4);
    for row in values.chunks_exact(dim) {
        out.extend_from_slice(&(dim as i32).to_le_bytes());
        row.iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    }
    std::fs::write(path, out).map_err(|source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a 2-D C-order little-endian float32 `.npy` file. Returns `(values, dim)`.
pub fn read_npy(path: &Path) -> Result<(Vec<f32>, usize)> {
    let bytes = read(path)?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(path, "missing NumPy magic"));
    }
    let (hlen, hstart) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(path, format!("unsupported npy version {v}"))),
    };
    let header = bytes
        .get(hstart..hstart + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad(path, "truncated or non-UTF-8 header"))?;
    let compact: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.contains("'descr':'<f4'") {
        return Err(bad(path, format!("need dtype '<f4', header {header}")));
    }
    if compact.contains("'fortran_order':True") {
        return Err(bad(path, "Fortran order not supported"));
    }
    let shape = compact
        .split("'shape':(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(path, "no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad(path, "bad shape")))
        .collect::<Result<_>>()?;
    let [n, dim] = dims[..] else {
        return Err(bad(path, format!("need a 2-D array, shape ({shape})")));
    };
    let data = &bytes[hstart + hlen..];
    if dim == 0 || data.len() != n * dim * 4 {
        return Err(bad(
            path,
            format!("data is {} bytes, shape needs {}", data.len(), n * dim * 4),
        ));
    }
    Ok((
        data.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        dim,
    ))
}
