//! Spatial resize, nearest and bilinear, with exact rational coordinates. `portable.rs`
//! (coordinates once per row and column) is the variant every target calls.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::resize;
