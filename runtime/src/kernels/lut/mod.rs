//! Element-wise table lookup (int8 Sigmoid, Tanh, HardSwish, LeakyRelu, ... as tables). The
//! reference is one load per value and is the variant every target calls.

pub mod reference;

/// The variant the interpreter calls.
pub use reference::lut;
