//! Quantize (float to int8) at the graph input and dequantize (int8 to float) at outputs.

pub mod reference;

/// The variant the interpreter calls.
pub use reference::{dequantize, quantize};
