//! Width-configuration search.
