//! Where sinhtrac finds things. Every location is configurable by environment (and by the CLI's flags),
//! with defaults that work in a checkout that ran `scripts/setup.sh`:
//!
//! | what | environment | default |
//! |---|---|---|
//! | shared folder (models, datasets) | `SINHTRAC_SHARED` | `../shared` beside the checkout |
//! | model weights | `SINHTRAC_MODELS` | `models/weights` in the checkout, else `$SINHTRAC_SHARED/models` |
//! | ONNX Runtime library | `ORT_DYLIB_PATH` | `$SINHTRAC_HOME/onnxruntime-1.32.0/libonnxruntime.so` |
//! | calibration files | `SINHTRAC_CALIBRATION` | `models/calibration` in the checkout |
//! | runtime home | `SINHTRAC_HOME` | `~/.cache/sinhtrac` |

use std::path::PathBuf;

/// The ONNX Runtime version the set-up script installs and the engine expects.
pub const ORT_VERSION: &str = "1.32.0";

/// The workspace root of the checkout this engine was built from.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The shared folder holding `models/` and `datasets/`.
pub fn shared_dir() -> PathBuf {
    env_path("SINHTRAC_SHARED").unwrap_or_else(|| workspace_root().join("../shared"))
}

/// The folder holding evaluation datasets (`lfw/`, `fingerprints/`, `face_pad_samples/`).
pub fn datasets_dir() -> PathBuf {
    shared_dir().join("datasets")
}

/// The folder holding model weights.
pub fn models_dir() -> PathBuf {
    if let Some(p) = env_path("SINHTRAC_MODELS") {
        return p;
    }
    let linked = workspace_root().join("models/weights");
    if linked.is_dir() {
        linked
    } else {
        shared_dir().join("models")
    }
}

/// Folder of calibration files (`SINHTRAC_CALIBRATION`, default `models/calibration` in the checkout).
pub fn calibration_dir() -> PathBuf {
    env_path("SINHTRAC_CALIBRATION").unwrap_or_else(|| workspace_root().join("models/calibration"))
}

/// Where sinhtrac keeps the runtime library and caches.
pub fn sinhtrac_home() -> PathBuf {
    env_path("SINHTRAC_HOME").unwrap_or_else(|| {
        env_path("HOME")
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join(".cache/sinhtrac")
    })
}

/// The ONNX Runtime shared library to load.
pub fn ort_library() -> PathBuf {
    env_path("ORT_DYLIB_PATH").unwrap_or_else(|| {
        sinhtrac_home()
            .join(format!("onnxruntime-{ORT_VERSION}"))
            .join("libonnxruntime.so")
    })
}
