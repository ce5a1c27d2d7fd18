//! Compiler passes, one file each, run in this order by [`crate::compile`]:
//!
//! 1. [`const_fold`]: evaluate constant-only nodes, drop identities;
//! 2. [`bn_fold`]: fold BatchNormalization into the preceding Conv/Gemm;
//! 3. [`act_fuse`]: Relu/Clip become the producer's output clamp;
//! 4. [`reshape_elim`]: Flatten before Gemm folds into the FC's positions; channel-vector
//!    reshapes vanish;
//! 5. [`lower`]: NCHW IR to NHWC runtime ops, segments and per-width channels (manifest
//!    checked against the graph);
//! 6. [`quantize`]: per-width calibration and int8 parameters;
//! 7. [`plan`]: arena offsets.

pub mod act_fuse;
pub mod bn_fold;
pub mod const_fold;
pub mod lower;
pub mod plan;
pub mod quantize;
pub mod reshape_elim;

use crate::ir::Graph;
use anyhow::Result;

/// A graph pass.
pub type GraphPass = fn(&mut Graph) -> Result<()>;

/// The graph-level passes (1-4), in order, with their names.
pub const GRAPH_PASSES: &[(&str, GraphPass)] = &[
    ("const_fold", const_fold::run),
    ("bn_fold", bn_fold::run),
    ("act_fuse", act_fuse::run),
    ("reshape_elim", reshape_elim::run),
];

/// Run the graph-level passes.
pub fn run_graph_passes(g: &mut Graph) -> Result<()> {
    for (_, pass) in GRAPH_PASSES {
        pass(g)?;
    }
    Ok(())
}
