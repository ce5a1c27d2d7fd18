//! Element-wise add of 2 to 4 int8 tensors, each rescaled to a common scale (TFLM's int8
//! Add, generalised). The reference is a single pass; the portable variant tabulates each
//! input's terms; on x86-64 with AVX2 two inputs take their terms with vector gathers.

pub mod portable;
pub mod reference;
#[cfg(target_arch = "x86_64")]
pub mod x86;

/// The variant the interpreter calls.
#[cfg(not(target_arch = "x86_64"))]
pub use portable::add;
#[cfg(target_arch = "x86_64")]
pub use x86::add;
