//! Quantize (float to int8) at the graph input and dequantize (int8 to float) at outputs.

pub mod reference;
#[cfg(target_arch = "x86_64")]
pub mod x86;

/// The variant the interpreter calls.
pub use reference::dequantize;
#[cfg(not(target_arch = "x86_64"))]
pub use reference::quantize;
#[cfg(target_arch = "x86_64")]
pub use x86::quantize;
