//! # edgeslim-compiler
//!
//! ONNX (float, int8 QDQ or QOperator; through tract-onnx) to an edgeslim model blob: import,
//! graph passes, lowering to NHWC runtime ops with the slimming manifest, per-width
//! calibration and int8 quantization, arena planning.
//!
//! ```no_run
//! use edgeslim_compiler::{CompileOptions, compile};
//! let c = compile(std::path::Path::new("model.onnx"), &CompileOptions::default())?;
//! std::fs::write("model.esm", &c.blob)?;
//! println!("arena {} B (lower bound {} B)", c.report.arena_bytes, c.report.arena_lower_bound);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Calibration: a float model needs samples (`CompileOptions::calib`, float32 `[N, C, H, W]`);
//! without them the compiler uses `calib.npy` beside the model if there is one (saying so in
//! the report's warnings), else it stops with an error. QDQ/QOperator models use the file's
//! scales at full width; narrower widths are calibrated when samples are given, else reuse the
//! full-width scales (with a warning).
#![deny(missing_docs)]

pub mod import;
pub mod inspect;
pub mod ir;
pub mod manifest;
pub use edgeslim_npy as npy;
pub mod passes;
pub mod reference;
pub mod run;
pub mod width;

pub use import::panic_expected;
pub use inspect::{Inspection, inspect};
pub use npy::{Array, NpyData, read_f32, read_npy, read_npz, write_f32, write_i8};
pub use passes::lower::Lowered;
pub use run::{BatchOutput, nchw_to_nhwc, nhwc_to_nchw, run_batch};
pub use width::{parse_tasks, parse_widths};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of [`compile`].
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Calibration samples, float32 `[N, C, H, W]` `.npy`.
    pub calib: Option<PathBuf>,
    /// Use at most this many calibration samples (the first ones).
    pub max_calib_samples: usize,
    /// Draw a progress bar while calibrating.
    pub progress: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            calib: None,
            max_calib_samples: 1024,
            progress: false,
        }
    }
}

/// What the compiler did.
#[derive(Debug, Clone, Serialize)]
pub struct CompileReport {
    /// Model name.
    pub name: String,
    /// `float`, or `prequantized` (QDQ / QOperator).
    pub source: String,
    /// Runtime ops.
    pub ops: usize,
    /// Segments with their widths.
    pub segments: Vec<(String, Vec<f32>)>,
    /// Calibration samples used (0 without calibration).
    pub calib_samples: usize,
    /// Calibration file used.
    pub calib_file: Option<String>,
    /// int8 weight bytes.
    pub weight_bytes: usize,
    /// Parameter bytes.
    pub param_bytes: usize,
    /// Blob bytes.
    pub blob_bytes: usize,
    /// Planned arena bytes.
    pub arena_bytes: usize,
    /// Liveness lower bound of the arena.
    pub arena_lower_bound: usize,
    /// Seconds spent.
    pub seconds: f64,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

/// A compiled model.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The model blob (`.esm`).
    pub blob: Vec<u8>,
    /// Report.
    pub report: CompileReport,
    /// The lowered model (for the float reference at any width).
    pub lowered: Lowered,
}

/// Read calibration samples (float32 `[N, C, H, W]`) for `l`'s input, as NHWC vectors.
pub fn load_calibration(l: &Lowered, path: &Path, max: usize) -> Result<Vec<Vec<f32>>> {
    let a = read_f32(path).context("calibration data")?;
    let [h, w, c] = l.tensors[l.input].shape;
    let sample: Vec<usize> = if l.input_is_vector {
        vec![c]
    } else {
        vec![c, h, w]
    };
    // `[N, C, H, W]`, or `run --input`'s leading-N layout of whole inputs, `[N, 1, C, H, W]`.
    let lead_n = a.shape.len() == sample.len() + 2 && a.shape[1] == 1 && a.shape[2..] == sample[..];
    if !lead_n && (a.shape.len() != sample.len() + 1 || a.shape[1..] != sample[..]) {
        let mut want = vec!["N".to_string()];
        want.extend(sample.iter().map(|d| d.to_string()));
        bail!(
            "calibration data {} has shape {:?}; the model input needs [{}] (or [N, 1, ...])",
            path.display(),
            a.shape,
            want.join(", ")
        );
    }
    let per: usize = sample.iter().product();
    let n = a.shape[0].min(max);
    if n == 0 {
        bail!("calibration data {} holds no samples", path.display());
    }
    Ok((0..n)
        .map(|i| {
            let s = &a.data[i * per..(i + 1) * per];
            if l.input_is_vector {
                s.to_vec()
            } else {
                nchw_to_nhwc(s, c, h, w)
            }
        })
        .collect())
}

/// Import, lower and run the graph passes: the model before quantization.
pub fn lower(path: &Path) -> Result<Lowered> {
    let mut g = import::import(path)?;
    passes::run_graph_passes(&mut g)?;
    passes::lower::run(&g)
}

/// Compile an ONNX file to a model blob.
pub fn compile(path: &Path, opts: &CompileOptions) -> Result<Compiled> {
    let t0 = Instant::now();
    let l = lower(path)?;
    let mut warnings = Vec::new();
    let calib_path = match &opts.calib {
        Some(p) => Some(p.clone()),
        None if !l.prequantized => {
            let beside = path.with_file_name("calib.npy");
            if beside.exists() {
                warnings.push(format!(
                    "no --calib given: calibrating with {} beside the model",
                    beside.display()
                ));
                Some(beside)
            } else {
                bail!(
                    "{} is a float model: pass --calib X.npy (float32 [N, C, H, W] samples) to calibrate activations",
                    path.display()
                );
            }
        }
        None => None,
    };
    let ranges = match &calib_path {
        Some(p) => {
            let samples = load_calibration(&l, p, opts.max_calib_samples)?;
            Some(passes::quantize::calibrate(&l, &samples, opts.progress))
        }
        None => None,
    };
    let def = passes::quantize::run(&l, ranges.as_ref(), &mut warnings)?;
    let plan = passes::plan::run(&def);
    let blob = def.to_bytes(&plan).map_err(|e| anyhow::anyhow!("{e}"))?;
    let model = edgeslim_runtime::Model::parse(&blob).map_err(|e| match e {
        // An op reading a slimmed tensor of a segment whose width it cannot key on: a graph
        // the slimming rules cannot express (docs/manifest.md, "Encoder stages").
        edgeslim_runtime::Error::Invalid {
            section: edgeslim_runtime::Section::Ops,
            index,
            field: "inputs",
            reason,
        } if (index as usize) < l.ops.len() => {
            let op = &l.ops[index as usize];
            anyhow::anyhow!(
                "node {} ({}, segment {}): {reason}: a tensor read across encoder stages or from an earlier stage into a decoder must keep its channels whatever the other widths (end each stage with a layer of its own width; make skip connections fixed-width with fixed_channels)",
                op.name,
                op.op_type,
                l.manifest.segments[op.segment].name
            )
        }
        e => anyhow::anyhow!("internal error: the runtime rejects the compiled blob: {e}"),
    })?;
    let report = CompileReport {
        name: l.name.clone(),
        source: if l.prequantized {
            "prequantized"
        } else {
            "float"
        }
        .into(),
        ops: def.ops.len(),
        segments: l
            .manifest
            .segments
            .iter()
            .map(|s| (s.name.clone(), s.widths.clone()))
            .collect(),
        calib_samples: ranges.as_ref().map_or(0, |r| r.samples),
        calib_file: calib_path.map(|p| p.display().to_string()),
        weight_bytes: model.weight_bytes(),
        param_bytes: model.param_bytes(),
        blob_bytes: blob.len(),
        arena_bytes: plan.arena_bytes,
        arena_lower_bound: plan.lower_bound,
        seconds: t0.elapsed().as_secs_f64(),
        warnings,
    };
    Ok(Compiled {
        blob,
        report,
        lowered: l,
    })
}
