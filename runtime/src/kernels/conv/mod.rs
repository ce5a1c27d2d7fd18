//! 2-D convolution (groups, depthwise with a channel multiplier, stride, padding, dilation)
//! over NHWC int8 with per-output-channel requantization: the reference (the specification)
//! and its faster variants, all giving the reference's bytes.

#[cfg(edgeslim_arm_dsp)]
pub mod arm_dsp;
#[cfg(edgeslim_arm_mve)]
pub mod arm_mve;
pub mod portable;
pub mod reference;
#[cfg(target_arch = "x86_64")]
pub mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_rows;
#[cfg(target_arch = "x86_64")]
mod x86_vnni;

/// The variant the interpreter calls: on x86-64 the AVX2 variant when the CPU has it (detected
/// at run time; without it `x86::conv2d` runs the portable one), on Arm cores with the DSP
/// extension the SMLAD variant and on cores with MVE (Helium) the `VMLADAVA` variant (both
/// chosen at build time), else the portable one.
#[cfg(all(edgeslim_arm_dsp, not(edgeslim_arm_mve)))]
pub use arm_dsp::conv2d;
#[cfg(edgeslim_arm_mve)]
pub use arm_mve::conv2d;
#[cfg(not(any(target_arch = "x86_64", edgeslim_arm_dsp)))]
pub use portable::conv2d;
#[cfg(target_arch = "x86_64")]
pub use x86::conv2d;
