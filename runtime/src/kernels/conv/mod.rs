//! 2-D convolution (groups, depthwise with a channel multiplier, stride, padding, dilation)
//! over NHWC int8 with per-output-channel requantization: the reference (the specification)
//! and its faster variants, all giving the reference's bytes.

pub mod portable;
pub mod reference;
#[cfg(target_arch = "x86_64")]
pub mod x86;

/// The variant the interpreter calls: AVX2 when the CPU has it (detected at run time) on
/// x86-64, else portable.
#[cfg(not(target_arch = "x86_64"))]
pub use portable::conv2d;
/// The variant the interpreter calls: AVX2 when the CPU has it (detected at run time) on
/// x86-64, else portable.
#[cfg(target_arch = "x86_64")]
pub use x86::conv2d;
