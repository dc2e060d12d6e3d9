//! Evaluation protocols over datasets on disk: which comparisons to make and how to score them.
//! Metrics themselves (EER, FNMR at FMR, k-fold accuracy...) are in the `sinhtrac-eval` crate.

pub mod cache;
pub mod extract;
pub mod lfw;

