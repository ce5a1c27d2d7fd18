//! Constant folding: nodes whose inputs are all constants are evaluated at compile time;
//! identities are removed.

use crate::ir::{Const, Graph, Op};
use anyhow::{Result, bail};

/// Run the pass.
pub fn run(g: &mut Graph) -> Result<()> {
    for i in 0..g.nodes.len() {
        if g.nodes[i].dead {
            continue;
        }
        let n = g.nodes[i].clone();
        if n.op == Op::Identity {
            g.nodes[i].dead = true;
            g.replace_uses(n.output, n.inputs[0]);
            continue;
        }
        let consts: Option<Vec<&Const>> = n.inputs.iter().map(|&t| g.konst(t)).collect();
        let Some(consts) = consts else { continue };
        let data: Vec<f32> = match &n.op {
            Op::Reshape => consts[0].data.clone(),
            Op::Relu => consts[0].data.iter().map(|v| v.max(0.0)).collect(),
            Op::Clip(lo, hi) => consts[0].data.iter().map(|v| v.clamp(*lo, *hi)).collect(),
            Op::Add => consts[0]
                .data
                .iter()
                .zip(&consts[1].data)
                .map(|(a, b)| a + b)
                .collect(),
            _ => bail!(
                "node {} ({}): every input is a constant; only Reshape, Relu, Clip and Add of constants fold",
                n.name,
                n.op_type
            ),
        };
        g.tensors[n.output].konst = Some(Const { data, quant: None });
        g.nodes[i].dead = true;
    }
    Ok(())
}
