//! Element-wise add of 2 to 4 int8 tensors, each rescaled to a common scale (TFLM's int8
//! Add, generalised). The reference is a single pass; the portable variant tabulates each
//! input's terms and is what every target calls.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::add;
