//! tract, the importer edgeslim compiles through, running the same ONNX file: its optimised
//! plan (`model_for_path`, `into_optimized`, `into_runnable`), one state reused across calls.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tract_onnx::prelude::*;

/// How tract is called, for the report.
pub const HOW: &str = "tract-onnx: model_for_path(onnx) -> into_optimized() -> into_runnable(); \
     one state spawned from the plan and reused; each call `state.run([x])` (the input tensor \
     is shared, not copied)";

/// A loaded plan and its input.
pub struct Tract {
    state: TypedSimpleState,
    input: TValue,
    /// Graph output names, in the plan's output order.
    pub names: Vec<String>,
}

/// Load `path` with tract; `shape` is the input's shape when the file leaves it open, and
/// `x` the input (C order, `len` values).
pub fn load(path: &Path, shape: &[usize], x: &[f32]) -> Result<Tract> {
    let mut model = tract_onnx::onnx()
        .model_for_path(path)
        .with_context(|| format!("tract cannot load {}", path.display()))?;
    let names = model
        .output_outlets()?
        .iter()
        .map(|o| model.outlet_label(*o).unwrap_or_default().to_string())
        .collect();
    let declared = model.input_fact(0)?.shape.as_concrete_finite()?;
    let shape: Vec<usize> = match declared {
        Some(s) if s.iter().product::<usize>() == x.len() => s.to_vec(),
        Some(s) => bail!(
            "the ONNX file's input has shape {s:?} ({} values), the model blob's {}",
            s.iter().product::<usize>(),
            x.len()
        ),
        None => {
            model = model.with_input_fact(0, f32::fact(shape).into())?;
            shape.to_vec()
        }
    };
    let plan = model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .with_context(|| format!("tract cannot optimise {}", path.display()))?;
    let state = plan.spawn()?;
    let input = Tensor::from_shape(&shape, x)?.into_tvalue();
    Ok(Tract {
        state,
        input,
        names,
    })
}

impl Tract {
    /// `n` timed calls, microseconds each.
    pub fn time(&mut self, n: usize) -> Result<Vec<f64>> {
        let mut us = Vec::with_capacity(n);
        for _ in 0..n {
            let x = self.input.clone();
            let t0 = Instant::now();
            let out = self.state.run(tvec![x])?;
            let t = t0.elapsed();
            std::hint::black_box(&out);
            us.push(t.as_secs_f64() * 1e6);
        }
        Ok(us)
    }

    /// The outputs on the input: (name, values in C order).
    pub fn outputs(&mut self) -> Result<Vec<(String, Vec<f32>)>> {
        let out = self.state.run(tvec![self.input.clone()])?;
        out.iter()
            .zip(&self.names)
            .map(|(t, name)| {
                let t = t.cast_to::<f32>()?;
                Ok((
                    name.clone(),
                    t.to_plain_array_view::<f32>()?.iter().copied().collect(),
                ))
            })
            .collect()
    }
}
