//! Shared helpers for the integration tests: independent references ([`naive`]), the
//! width slicer that builds narrow single-width models ([`slice`]), blob surgery
//! ([`blob`]) and random model generators ([`models`]).

pub mod blob;
pub mod fuzz;
pub mod models;
pub mod naive;
pub mod slice;
