//! Fully connected layer over all NHWC positions of its input: the reference (the
//! specification) and its faster variants, all giving the reference's bytes.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::fully_connected;
