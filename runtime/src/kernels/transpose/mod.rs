//! Axis permutation of an int8 tensor. The reference is the variant every target calls.

pub mod reference;

/// The variant the interpreter calls.
pub use reference::transpose;
