//! Channel concatenation with per-input rescaling. `portable.rs` (a table per input) is the
//! variant every target calls.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::concat;
