//! Fully connected layer over all NHWC positions of its input: the reference (the
//! specification) and its faster variants, all giving the reference's bytes.

#[cfg(edgeslim_arm_dsp)]
pub mod arm_dsp;
#[cfg(edgeslim_arm_mve)]
pub mod arm_mve;
pub mod portable;
pub mod reference;
#[cfg(target_arch = "x86_64")]
pub mod x86;

/// The variant the interpreter calls: on x86-64 the AVX2 variant when the CPU has it (detected
/// at run time; without it `x86::fully_connected` runs the portable one), on Arm cores with the DSP
/// extension the SMLAD variant and on cores with MVE (Helium) the `VMLADAVA` variant (both
/// chosen at build time), else the portable one.
#[cfg(all(edgeslim_arm_dsp, not(edgeslim_arm_mve)))]
pub use arm_dsp::fully_connected;
#[cfg(edgeslim_arm_mve)]
pub use arm_mve::fully_connected;
#[cfg(not(any(target_arch = "x86_64", edgeslim_arm_dsp)))]
pub use portable::fully_connected;
#[cfg(target_arch = "x86_64")]
pub use x86::fully_connected;
