//! Channel concatenation with per-input rescaling. The reference is a single pass and is the
//! variant every target calls.

pub mod reference;

/// The variant the interpreter calls.
pub use reference::concat;
