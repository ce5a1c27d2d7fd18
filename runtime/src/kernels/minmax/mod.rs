//! Element-wise maximum and minimum of two rescaled inputs. `portable.rs` (one table per
//! input) is the variant every target calls.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::minmax;
