//! Fully connected layer over all NHWC positions of its input: the reference (the
//! specification) and its faster variants, all giving the reference's bytes.

#[cfg(all(target_arch = "arm", target_feature = "dsp"))]
pub mod arm_dsp;
pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
#[cfg(all(target_arch = "arm", target_feature = "dsp"))]
pub use arm_dsp::fully_connected;
#[cfg(not(all(target_arch = "arm", target_feature = "dsp")))]
pub use portable::fully_connected;
