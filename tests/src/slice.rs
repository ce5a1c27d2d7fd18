//! The width slicer: a narrow, single-width model holding exactly one width configuration of
//! a slimmable model, built from the sliced weights (`W[:out_ch, ..., :in_ch]` in the kernels'
//! layouts) and that configuration's width entries.

use crate::naive::{key, slice_conv_weights, slice_fc_weights};
use edgeslim_runtime::format::{OpKind, attr};
use edgeslim_runtime::writer::ModelDef;

/// `def` cut to width indices `widths` (one per segment): every segment has the single width
/// 1.0, every tensor the active channels of its producer, every op the one entry of its key
/// with dense (sliced) weights.
pub fn narrow_model(def: &ModelDef, widths: &[usize]) -> ModelDef {
    assert_eq!(widths.len(), def.segments.len());
    let mut n = def.clone();
    n.name = format!("{}-narrow", def.name);
    for s in &mut n.segments {
        s.widths = vec![1.0];
    }
    for (oi, op) in def.ops.iter().enumerate() {
        let e = op.entries[key(def, op, widths)].clone();
        let nop = &mut n.ops[oi];
        match op.kind {
            OpKind::ConvTranspose => {
                let (w, ws) = slice_conv_weights(op, &e);
                nop.weights = w;
                nop.wshape = ws;
            }
            OpKind::Conv2d => {
                let (w, ws) = slice_conv_weights(op, &e);
                nop.weights = w;
                nop.wshape = ws;
                if op.attrs[attr::DEPTHWISE] == 1 {
                    nop.attrs[attr::GROUPS] = e.in_ch as u32;
                }
            }
            OpKind::FullyConnected => {
                let (w, ws) = slice_fc_weights(op, &e);
                nop.weights = w;
                nop.wshape = ws;
            }
            OpKind::PRelu => {
                nop.weights.truncate(e.out_ch);
                nop.wshape = [e.out_ch, 1, 1, 1];
            }
            _ => {}
        }
        n.tensors[op.output].shape[2] = e.out_ch;
        let mut e = e;
        e.channels.truncate(e.out_ch);
        nop.entries = vec![e];
    }
    n
}
