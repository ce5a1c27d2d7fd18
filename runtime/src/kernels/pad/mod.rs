//! Spatial padding (constant, reflect, edge) with a requantizing copy. `portable.rs` (one
//! table, whole rows) is the variant every target calls.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::pad;
