//! Parametric ReLU with per-channel int8 slopes. `portable.rs` (per-channel tables) is the
//! variant every target calls.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::prelu;
