//! Benchmarks live in this package so they can use every engine crate; see the `[[bench]]` targets.
