//! Reshape elimination: reshapes between channel vectors (`[1, C, 1, 1]` and `[1, C]`) are
//! views and disappear; a Flatten of an NCHW `[C, H, W]` tensor feeding only Gemm/MatMul is
//! folded into those layers (they read the `H * W` positions directly, with permuted weight
//! columns, see the lowering pass).
//!
//! A reshape moves no values, so when the file quantizes only its output (`GlobalAveragePool ->
//! Flatten -> QuantizeLinear`), that quantization is its input's too.

use crate::ir::{Graph, Op};
use anyhow::{Result, bail};

fn channel_vector(s: &[usize]) -> bool {
    s.first() == Some(&1) && s.iter().skip(2).all(|&d| d == 1)
}

/// Run the pass.
pub fn run(g: &mut Graph) -> Result<()> {
    for i in 0..g.nodes.len() {
        if g.nodes[i].dead || g.nodes[i].op != Op::Reshape {
            continue;
        }
        let n = g.nodes[i].clone();
        let x = n.inputs[0];
        let s_in = g.tensors[x].shape.clone();
        let s_out = g.tensors[n.output].shape.clone();
        if g.tensors[x].quant.is_none() {
            g.tensors[x].quant = g.tensors[n.output].quant;
        }
        if channel_vector(&s_in) && channel_vector(&s_out) {
            g.nodes[i].dead = true;
            g.replace_uses(n.output, x);
            continue;
        }
        let consumers = g.consumers(n.output);
        let all_fc = !consumers.is_empty()
            && consumers
                .iter()
                .all(|&c| g.nodes[c].op == Op::Gemm && g.nodes[c].inputs[0] == n.output);
        match s_in.as_slice() {
            [1, c, h, w] if all_fc && s_out == [1, c * h * w] && !g.is_output(n.output) => {
                for c2 in consumers {
                    g.nodes[c2].positions = h * w;
                    g.nodes[c2].inputs[0] = x;
                }
                g.nodes[i].dead = true;
            }
            _ => bail!(
                "node {} ({}): reshaping {s_in:?} to {s_out:?} reorders NCHW data; supported only as a Flatten feeding Gemm/MatMul, or between [1, C, 1, 1] and [1, C]",
                n.name,
                n.op_type
            ),
        }
    }
    Ok(())
}
