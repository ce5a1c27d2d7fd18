//! Element-wise int8 product, with the second operand optionally one value per channel. The
//! reference is a single pass and is the variant every target calls.

pub mod reference;

/// The variant the interpreter calls.
pub use reference::mul;
