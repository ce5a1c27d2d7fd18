//! Transposed convolution (gather form). The reference is the variant every target calls.

pub mod reference;

/// The variant the interpreter calls.
pub use reference::conv_transpose;
