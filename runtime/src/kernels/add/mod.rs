//! Element-wise add of 2 to 4 int8 tensors, each rescaled to a common scale (TFLM's int8
//! Add, generalised). The reference is a single pass and is the variant every target calls.

pub mod reference;

/// The variant the interpreter calls.
pub use reference::add;
