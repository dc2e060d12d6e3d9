//! Shared helpers: locating the FVC data and extracting templates.
#![allow(dead_code)]

use sinhtrac_finger::{fvc, ClassicalExtractor, FingerTemplate};
use std::path::PathBuf;

/// `$SINHTRAC_SHARED` or `<workspace>/../shared`.
pub fn shared() -> PathBuf {
    std::env::var_os("SINHTRAC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../../shared"))
        })
}

/// A database folder, e.g. `fvc2002/DB1_B`; panics naming the path when
/// missing, because a test that silently skips proves nothing.
pub fn db(name: &str) -> PathBuf {
    let p = shared().join("datasets/fingerprints").join(name);
    assert!(
        p.is_dir(),
        "FVC data missing: {} (set SINHTRAC_SHARED to the folder holding datasets/)",
        p.display()
    );
    p
}

/// Extracts `NNN_M.tif` from a database.
pub fn template(db_name: &str, finger: u32, impression: u32) -> FingerTemplate {
    let path = db(db_name).join(format!("{finger}_{impression}.tif"));
    fvc::extract_file(&ClassicalExtractor, &path, 500)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
