//! Element-wise int8 product, with the second operand optionally one value per channel.
//! `portable.rs` (per-channel tables for a broadcast operand) is the variant every target
//! calls.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::mul;
