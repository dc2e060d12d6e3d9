//! Vector file readers.

use sinhtrac_index::bench::io::{read_fvecs, read_npy, write_fvecs};
use sinhtrac_index::IndexError;

#[test]
fn fvecs_round_trip_and_errors() {
    let dir = std::env::temp_dir().join(format!("sinhtrac-index-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("a.fvecs");
    let v: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
    write_fvecs(&p, &v, 3).unwrap();
    assert_eq!(read_fvecs(&p).unwrap(), (v.clone(), 3));
    std::fs::write(&p, [3u8, 0, 0, 0, 1, 2]).unwrap();
    assert!(matches!(read_fvecs(&p), Err(IndexError::Format { .. })));
    assert!(matches!(
        read_fvecs(&dir.join("missing.fvecs")),
        Err(IndexError::Io { .. })
    ));

    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }";
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
    bytes.extend_from_slice(h.as_bytes());
    v.iter()
        .for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
    let p = dir.join("a.npy");
    std::fs::write(&p, &bytes).unwrap();
    assert_eq!(read_npy(&p).unwrap(), (v, 3));
    bytes.pop();
    std::fs::write(&p, &bytes).unwrap();
    assert!(matches!(read_npy(&p), Err(IndexError::Format { .. })));
    std::fs::remove_dir_all(&dir).ok();
}
