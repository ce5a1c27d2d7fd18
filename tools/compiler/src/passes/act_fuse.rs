//! Activation fusion: a Relu or Clip becomes the clamp of its producer's output stage (the
//! runtime has no standalone activation op). Quantized files also imply activations: ONNX
//! Runtime drops a Relu whose output quantization starts at zero (uint8 zero point 0), leaving
//! the clamp to the Q range. At full width that is the same, but narrower widths calibrate
//! their own ranges, so such an op gets an explicit Relu.

use crate::ir::{Act, Graph, Op};
use anyhow::{Result, bail};

/// Run the pass.
pub fn run(g: &mut Graph) -> Result<()> {
    for n in g.nodes.iter_mut().filter(|n| !n.dead) {
        if n.act == Act::None
            && !matches!(n.op, Op::Relu | Op::Clip(..) | Op::Softmax | Op::Reshape)
            && g.tensors[n.output]
                .quant
                .is_some_and(|q| q.zero_point == -128)
        {
            n.act = Act::Relu;
        }
    }
    for i in 0..g.nodes.len() {
        if g.nodes[i].dead {
            continue;
        }
        let act = match g.nodes[i].op {
            Op::Relu => Act::Relu,
            Op::Clip(lo, hi) => Act::Clip(lo, hi),
            _ => continue,
        };
        let n = g.nodes[i].clone();
        let x = n.inputs[0];
        let p = g.producer(x).filter(|&p| {
            !matches!(
                g.nodes[p].op,
                Op::Reshape | Op::Softmax | Op::BatchNorm { .. }
            ) && g.consumers(x).len() == 1
                && !g.is_output(x)
        });
        let Some(p) = p else {
            bail!(
                "node {} ({}): an activation must follow a Conv, Gemm, Add, pooling or Concat whose output it alone reads",
                n.name,
                n.op_type
            );
        };
        let prod = &mut g.nodes[p];
        prod.act = prod.act.then(act);
        prod.output = n.output;
        g.nodes[i].dead = true;
    }
    Ok(())
}
