//! Element-wise maximum and minimum of two rescaled inputs. The reference is a single pass
//! and is the variant every target calls.

pub mod reference;

/// The variant the interpreter calls.
pub use reference::minmax;
