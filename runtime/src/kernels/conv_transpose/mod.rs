//! Transposed convolution (gather form). `portable.rs` (taps found once per position, dot
//! products over input channels) is the variant every target calls.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::conv_transpose;
