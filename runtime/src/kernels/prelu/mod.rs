//! Parametric ReLU with per-channel int8 slopes. The reference is a single pass and is the
//! variant every target calls.

pub mod reference;

/// The variant the interpreter calls.
pub use reference::prelu;
