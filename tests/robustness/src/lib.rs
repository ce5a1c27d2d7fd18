//! The robustness suite lives in `tests/robustness.rs`; this crate has no library code.
