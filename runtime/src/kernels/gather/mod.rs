//! Channel selection with a requantizing copy. `portable.rs` (one table) is the variant every
//! target calls.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::gather_channels;
