//! int8 softmax over the channels of each position (TFLM's fixed-point algorithm). The
//! reference is the variant every target calls.

pub mod reference;

/// The variant the interpreter calls.
pub use reference::softmax;
