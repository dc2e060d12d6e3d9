//! The ONNX Runtime environment and checksum-verified model sessions.
//!
//! One environment per process (ONNX Runtime allows no more), loaded dynamically from the library the
//! set-up script installs. Each model's file is verified against the manifest's sha256 before its first
//! session is built. `ort`'s `Session::run` needs `&mut`, so a [`ModelSession`] keeps a small pool of
//! sessions: concurrent callers each check one out instead of queueing on a lock.

pub mod manifest;
pub mod rewrite;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use sha2::{Digest, Sha256};

pub use manifest::{Colour, Manifest, ModelEntry, Role};

/// Errors loading or running models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The ONNX Runtime shared library is not where it was expected.
    #[error("ONNX Runtime library not found at {0} (run scripts/setup.sh or set ORT_DYLIB_PATH)")]
    RuntimeMissing(PathBuf),
    /// The ONNX Runtime could not be initialised.
    #[error("ONNX Runtime failed to initialise: {0}")]
    RuntimeInit(String),
    /// A model file is missing.
    #[error("model '{id}' file not found: {path} (run models/fetch.sh or set SINHTRAC_MODELS)")]
    ModelMissing {
        /// Model id.
        id: String,
        /// Path looked at.
        path: PathBuf,
    },
    /// A model file's checksum does not match the manifest.
    #[error("model '{id}' file {path} has sha256 {actual}, manifest says {expected}")]
    ChecksumMismatch {
        /// Model id.
        id: String,
        /// File checked.
        path: PathBuf,
        /// Manifest checksum.
        expected: String,
        /// Actual checksum.
        actual: String,
    },
    /// No such model in the manifest.
    #[error("unknown model: {0}")]
    UnknownModel(String),
    /// The manifest is malformed.
    #[error("model manifest: {0}")]
    Manifest(String),
    /// A model has no usable calibration, so no decision can be made with it.
    #[error("model '{model}' cannot be used for decisions: {detail}")]
    Uncalibrated {
        /// Model id (or calibration file).
        model: String,
        /// Why.
        detail: String,
    },
    /// Building a session or running inference failed.
    #[error("model '{model}': {message}")]
    Inference {
        /// Model id.
        model: String,
        /// What failed.
        message: String,
    },
}

impl ModelError {
    /// Stable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            ModelError::RuntimeMissing(_) | ModelError::RuntimeInit(_) => "RUNTIME_UNAVAILABLE",
            ModelError::ModelMissing { .. } => "MODEL_MISSING",
            ModelError::ChecksumMismatch { .. } => "MODEL_CHECKSUM_MISMATCH",
            ModelError::UnknownModel(_) | ModelError::Manifest(_) => "MODEL_UNKNOWN",
            ModelError::Uncalibrated { .. } => "MODEL_UNCALIBRATED",
            ModelError::Inference { .. } => "INFERENCE_FAILED",
        }
    }

    pub(crate) fn inference(model: &str, e: impl std::fmt::Display) -> Self {
        ModelError::Inference {
            model: model.to_string(),
            message: e.to_string(),
        }
    }
}

/// How models are loaded and run.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Folder holding the weight files.
    pub models_dir: PathBuf,
    /// The ONNX Runtime shared library.
    pub ort_library: PathBuf,
    /// Threads one inference may use. 1 is best when requests already run in parallel.
    pub intra_threads: usize,
    /// Rewrite `PRelu` as `Max`/`Min`/`Mul`/`Add` at load (same outputs bit for bit, twice as fast on
    /// the liveness models with ONNX Runtime 1.32; see [`rewrite`]). On by default; off for A/B runs.
    pub rewrite_prelu: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            models_dir: crate::paths::models_dir(),
            ort_library: crate::paths::ort_library(),
            intra_threads: 1,
            rewrite_prelu: true,
        }
    }
}

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment(library: &Path) -> Result<&'static ort::environment::Environment, ModelError> {
    // ort panics when the library is missing: check first so the caller gets a clear error.
    if ENVIRONMENT.get().is_none() && !library.is_file() {
        return Err(ModelError::RuntimeMissing(library.to_path_buf()));
    }
    let env = ENVIRONMENT.get_or_init(|| {
        let builder = ort::init_from(library).map_err(|e| e.to_string())?;
        builder
            .with_name("sinhtrac")
            .build()
            .map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|e| ModelError::RuntimeInit(e.clone()))
}

/// A verified model with a pool of ONNX Runtime sessions.
pub struct ModelSession {
    entry: ModelEntry,
    model_bytes: Vec<u8>,
    intra_threads: usize,
    env: &'static ort::environment::Environment,
    idle: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for ModelSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSession")
            .field("model", &self.entry.id)
            .finish()
    }
}

impl ModelSession {
    /// Load and verify a model; builds its first session so that errors surface now, not mid-request.
    pub fn load(entry: &ModelEntry, config: &RuntimeConfig) -> Result<Self, ModelError> {
        let env = environment(&config.ort_library)?;
        let path = config.models_dir.join(&entry.file);
        let model_bytes = std::fs::read(&path).map_err(|_| ModelError::ModelMissing {
            id: entry.id.clone(),
            path: path.clone(),
        })?;
        let actual: String = Sha256::digest(&model_bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if actual != entry.sha256 {
            return Err(ModelError::ChecksumMismatch {
                id: entry.id.clone(),
                path,
                expected: entry.sha256.clone(),
                actual,
            });
        }
        let rewritten = match config.rewrite_prelu {
            true => rewrite::prelu_as_max_min(&model_bytes),
            false => None,
        };
        let mut model = ModelSession {
            entry: entry.clone(),
            model_bytes,
            intra_threads: config.intra_threads.max(1),
            env,
            idle: Mutex::new(Vec::new()),
        };
        // The rewritten graph if ONNX Runtime takes it (a model whose PRelu runs on another element
        // type or below opset 8 would not), else the file as it is.
        let mut ready = false;
        if let Some(rewritten) = rewritten {
            let original = std::mem::replace(&mut model.model_bytes, rewritten);
            match model.build_session() {
                Ok(first) => {
                    tracing::debug!(model = %entry.id, "PRelu rewritten as Max/Min/Mul/Add");
                    model.give_back(first);
                    ready = true;
                }
                Err(e) => {
                    tracing::warn!(model = %entry.id, error = %e, "PRelu rewrite refused; the stock graph is used");
                    model.model_bytes = original;
                }
            }
        }
        if !ready {
            let first = model.build_session()?;
            model.give_back(first);
        }
        tracing::debug!(model = %entry.id, "model loaded");
        Ok(model)
    }

    /// The manifest entry.
    pub fn entry(&self) -> &ModelEntry {
        &self.entry
    }

    fn build_session(&self) -> Result<Session, ModelError> {
        let id = &self.entry.id;
        let err =
            |e: ort::Error<ort::session::builder::SessionBuilder>| ModelError::inference(id, e);
        Session::builder(self.env)
            .map_err(|e| ModelError::inference(id, e))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(err)?
            .with_intra_threads(self.intra_threads)
            .map_err(err)?
            .with_inter_threads(1)
            .map_err(err)?
            .with_intra_op_spinning(false)
            .map_err(err)?
            .commit_from_memory(&self.model_bytes)
            .map_err(|e| ModelError::inference(id, e))
    }

    fn give_back(&self, session: Session) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(session);
        }
    }

    /// Run `f` with a session of this model (checked out from the pool, or built if all are busy).
    pub fn with_session<T>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, ModelError>,
    ) -> Result<T, ModelError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut session = match pooled {
            Some(s) => s,
            None => self.build_session()?,
        };
        let out = f(&mut session);
        self.give_back(session);
        out
    }
}

/// One output tensor, copied out of the session.
#[derive(Debug, Clone)]
pub struct Output {
    /// Output name in the graph.
    pub name: String,
    /// Shape as reported by the runtime.
    pub shape: Vec<i64>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

impl ModelSession {
    /// Run the model on one f32 tensor (`shape`, row-major `data`) and copy every output out.
    pub fn run_f32(&self, shape: &[usize], data: &[f32]) -> Result<Vec<Output>, ModelError> {
        let id = &self.entry.id;
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(ModelError::inference(
                id,
                format!("input has {} values, shape needs {expected}", data.len()),
            ));
        }
        let name = self.entry.input_name.clone();
        self.with_session(|session| {
            let tensor = ort::value::TensorRef::from_array_view((shape.to_vec(), data))
                .map_err(|e| ModelError::inference(id, e))?;
            let outputs = session
                .run(ort::inputs![name.as_str() => tensor])
                .map_err(|e| ModelError::inference(id, e))?;
            let mut copied = Vec::with_capacity(outputs.len());
            for (out_name, value) in outputs.iter() {
                let (shape, values) = value
                    .try_extract_tensor::<f32>()
                    .map_err(|e| ModelError::inference(id, format!("output {out_name}: {e}")))?;
                copied.push(Output {
                    name: out_name.to_string(),
                    shape: shape.to_vec(),
                    data: values.to_vec(),
                });
            }
            Ok(copied)
        })
    }
}

/// Find an output by name.
pub fn output<'a>(
    outputs: &'a [Output],
    model: &str,
    name: &str,
) -> Result<&'a Output, ModelError> {
    outputs
        .iter()
        .find(|o| o.name == name)
        .ok_or_else(|| ModelError::inference(model, format!("missing output {name}")))
}
