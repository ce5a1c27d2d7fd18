//! Put the board's memory map (`memory/<feature>.x` of the one board feature enabled, see
//! `src/board.rs`) where the runtime's link.x (cortex-m-rt's or riscv-rt's) finds it as
//! `memory.x`, and turn the generated
//! model assets into `$OUT_DIR/assets.rs` for the programs that run a model (`deploy`,
//! `profile`).
//!
//! The assets are produced by the test pipeline, never committed: `cargo xtask firmware`
//! compiles a bundled model with the host CLI into `target/firmware-assets/` (the directory in
//! `EDGESLIM_FW_ASSETS`, set by `firmware/.cargo/config.toml` and by xtask) before building:
//!
//! | file | what |
//! |---|---|
//! | `model.esm` | the compiled model blob (`edgeslim compile`) |
//! | `samples.f32` | input samples, NHWC float32 little-endian, back to back |
//! | `levels.rs` | the bundle's Rust levels (`edgeslim bundle`), absent before profiling |
//! | `npu/` | with `edgeslim bundle --npu <config>`: the Vela command streams and weights `levels.rs` includes (feature `ethos-u55`; without it the NPU items are cut off) |
//! | `parse-bench.esm` | a second, larger model whose parse cost the `parse` program measures |
//! | `widths.txt` | optional: the width configurations `opbench` runs, one a line, width indices encoder first (`2,1,1`); absent: the widest and the narrowest |
//!
//! `edgeslim bench --target cortex-m4` writes its own assets directory (its model, its input,
//! its `widths.txt`) and builds `opbench` with it.
//!
//! The blob is parsed here with the same runtime (host build) so that the arena is sized from
//! the model (`ARENA_BYTES`) and a broken blob fails the build, not the board. Without assets
//! (a plain `cargo build` before xtask ran) the constants describe "no model" and the model
//! programs exit 1 saying so; `hello` is unaffected.

use std::env;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use edgeslim_runtime::{Model, OpKind};

#[path = "build_cmsis_nn.rs"]
mod cmsis_nn;
// The runtime's own choice of Arm kernel variants (`runtime/build.rs`), so that `bench` names
// the sets the runtime exports: `cfg(arm_dsp_kernels)` for `kernels::arm_dsp`,
// `cfg(arm_mve_kernels)` for `kernels::arm_mve`.
#[path = "../../runtime/kernel_cfg.rs"]
mod kernel_cfg;

fn main() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let board = board()?;
    let memory = PathBuf::from("memory").join(format!("{board}.x"));
    fs::copy(&memory, out.join("memory.x"))
        .map_err(|e| format!("cannot copy {}: {e}", memory.display()))?;
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", memory.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=EDGESLIM_FW_ASSETS");

    let assets = env::var_os("EDGESLIM_FW_ASSETS").map(PathBuf::from);
    let src = match &assets {
        Some(dir) => {
            for f in [
                "model.esm",
                "samples.f32",
                "levels.rs",
                "parse-bench.esm",
                "widths.txt",
            ] {
                println!("cargo:rerun-if-changed={}", dir.join(f).display());
            }
            // Rerun when files appear, too (a missing file is not watched by the lines above
            // on every cargo version).
            println!("cargo:rerun-if-changed={}", dir.display());
            if dir.join("model.esm").is_file() {
                assets_source(dir)?
            } else {
                no_assets(&format!("no model.esm in {}", dir.display()))
            }
        }
        None => no_assets("EDGESLIM_FW_ASSETS is not set"),
    };
    fs::write(out.join("assets.rs"), src)?;
    println!("cargo::rustc-check-cfg=cfg(arm_dsp_kernels, arm_mve_kernels)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo::rerun-if-changed=../../runtime/kernel_cfg.rs");
    let (dsp, mve) = kernel_cfg::arm_kernels();
    if dsp {
        println!("cargo::rustc-cfg=arm_dsp_kernels");
    }
    if mve {
        println!("cargo::rustc-cfg=arm_mve_kernels");
    }
    cmsis_nn::build(mve)?;
    Ok(())
}

/// The board feature that is enabled (`src/board.rs`); exactly one must be.
fn board() -> Result<&'static str, Box<dyn Error>> {
    const BOARDS: [&str; 9] = [
        "mps2-an385",
        "mps2-an386",
        "mps2-an500",
        "mps2-an505",
        "mps3-an547",
        "virt-rv32",
        "nucleo-f446re",
        "nrf52840-dk",
        "pico2",
    ];
    let on: Vec<&str> = BOARDS
        .into_iter()
        .filter(|b| {
            let var = format!("CARGO_FEATURE_{}", b.to_uppercase().replace('-', "_"));
            env::var_os(var).is_some()
        })
        .collect();
    match on.as_slice() {
        [b] => Ok(b),
        [] => Err(format!("no board feature enabled: enable one of {BOARDS:?}").into()),
        _ => Err(format!("several board features enabled ({on:?}): enable exactly one").into()),
    }
}

fn assets_source(dir: &Path) -> Result<String, Box<dyn Error>> {
    let model_path = dir.join("model.esm");
    let blob = fs::read(&model_path)?;
    let model = Model::parse(&blob)
        .map_err(|e| format!("{}: invalid model blob: {e}", model_path.display()))?;
    let input_len = model.input_len();
    let samples_path = dir.join("samples.f32");
    let raw = fs::read(&samples_path)
        .map_err(|e| format!("cannot read {}: {e}", samples_path.display()))?;
    let sample_bytes = input_len * 4;
    if raw.is_empty() || raw.len() % sample_bytes != 0 {
        return Err(format!(
            "{}: {} bytes is not a whole number of {input_len}-float samples",
            samples_path.display(),
            raw.len()
        )
        .into());
    }
    let n_samples = raw.len() / sample_bytes;

    let mut s = String::new();
    writeln!(
        s,
        "// Generated by edgeslim-firmware/build.rs from {}.",
        dir.display()
    )?;
    writeln!(s, "/// Whether the model assets were generated.")?;
    writeln!(s, "pub const AVAILABLE: bool = true;")?;
    writeln!(s, "/// Why they are missing (empty: they are not).")?;
    writeln!(s, "pub const MISSING: &str = \"\";")?;
    writeln!(s, "/// Model name.")?;
    writeln!(s, "pub const MODEL_NAME: &str = {:?};", model.name())?;
    writeln!(s, "/// The model blob, 16-byte aligned in flash.")?;
    writeln!(
        s,
        "pub static MODEL: &Aligned<[u8; {}]> = &Aligned(*include_bytes!({:?}));",
        blob.len(),
        model_path.canonicalize()?.display().to_string()
    )?;
    writeln!(s, "/// Arena bytes the model's plan needs.")?;
    writeln!(s, "pub const ARENA_BYTES: usize = {};", model.arena_bytes())?;
    writeln!(s, "/// Input elements per sample (NHWC).")?;
    writeln!(s, "pub const INPUT_LEN: usize = {input_len};")?;
    writeln!(s, "/// Number of input samples.")?;
    writeln!(s, "pub const N_SAMPLES: usize = {n_samples};")?;
    writeln!(
        s,
        "/// The input samples, NHWC float32 (exact bit patterns)."
    )?;
    writeln!(s, "pub static SAMPLES: [[f32; INPUT_LEN]; N_SAMPLES] = [")?;
    for sample in raw.chunks_exact(sample_bytes) {
        s.push_str("    [");
        for v in sample.chunks_exact(4) {
            let bits = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            write!(s, "f32::from_bits({bits:#010x}), ")?;
        }
        s.push_str("],\n");
    }
    writeln!(s, "];")?;

    s.push_str(&parse_bench(dir)?);
    let widths_path = dir.join("widths.txt");
    let configs = if widths_path.is_file() {
        let text = fs::read_to_string(&widths_path)
            .map_err(|e| format!("cannot read {}: {e}", widths_path.display()))?;
        width_configs(&model, &text).map_err(|e| format!("{}: {e}", widths_path.display()))?
    } else {
        Vec::new()
    };
    writeln!(
        s,
        "/// The width configurations `opbench` runs (indices, encoder first; `widths.txt`); \
         empty: the widest and the narrowest."
    )?;
    let list: Vec<String> = configs.iter().map(|c| format!("&{c:?}")).collect();
    writeln!(
        s,
        "pub static WIDTH_CONFIGS: &[&[u8]] = &[{}];",
        list.join(", ")
    )?;
    write_op_maxima(&mut s, &model)?;

    let levels = dir.join("levels.rs");
    if levels.is_file() {
        s.push_str(&levels_source(&levels)?);
    } else {
        s.push_str(&no_levels());
    }
    Ok(s)
}

/// Whether the `ethos-u55` feature (the NPU driver) is on.
fn npu_feature() -> bool {
    env::var_os("CARGO_FEATURE_ETHOS_U55").is_some()
}

/// Where the NPU items of a bundle's levels begin (`edgeslim bundle --npu <config>` appends
/// them after `LEVELS`, from `pub const NPU_CONFIG` and the doc comment before it), if it has
/// any.
fn npu_items_start(text: &str) -> Option<usize> {
    let mut start = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("pub const NPU_CONFIG:") {
            return Some(start.unwrap_or(at));
        }
        if t.starts_with("///") {
            start.get_or_insert(at);
        } else {
            start = None;
        }
        at += line.len();
    }
    None
}

/// The `levels` module. With the `ethos-u55` feature it always has the NPU items: the
/// bundle's, or an empty table (every segment on the CPU) when it has none. Without the
/// feature the bundle's NPU items, which name the driver's types, are cut off (in a copy in
/// `OUT_DIR`).
fn levels_source(levels: &Path) -> Result<String, Box<dyn Error>> {
    let text =
        fs::read_to_string(levels).map_err(|e| format!("cannot read {}: {e}", levels.display()))?;
    let npu = npu_items_start(&text);
    let with_npu = npu_feature();
    let mut s = String::new();
    writeln!(s, "/// Whether a bundle's levels were generated.")?;
    writeln!(s, "pub const HAS_LEVELS: bool = true;")?;
    let path = match (npu, with_npu) {
        (Some(at), false) => {
            let cpu = &text[..at];
            if cpu.contains("edgeslim_ethos_u") {
                return Err(format!(
                    "{}: NPU items before `pub const NPU_CONFIG`: cannot build it without the \
                     `ethos-u55` feature",
                    levels.display()
                )
                .into());
            }
            let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?)
                .join("levels-cpu.rs");
            fs::write(&out, cpu)?;
            out
        }
        _ => levels.canonicalize()?,
    };
    writeln!(
        s,
        "/// Whether the bundle's NPU command streams are built in (feature `ethos-u55`)."
    )?;
    writeln!(
        s,
        "pub const HAS_NPU_STREAMS: bool = {};",
        npu.is_some() && with_npu
    )?;
    writeln!(s, "/// The bundle's levels (`edgeslim bundle`).")?;
    writeln!(s, "pub mod levels {{")?;
    writeln!(s, "    include!({:?});", path.display().to_string())?;
    if with_npu && npu.is_none() {
        s.push_str(NPU_EMPTY);
    }
    writeln!(s, "}}")?;
    Ok(s)
}

/// The NPU items of a bundle without command streams (feature `ethos-u55`): no stream, so the
/// driver declines every segment and the CPU runs it.
const NPU_EMPTY: &str = r#"
    /// No NPU command streams in this bundle: every segment runs on the CPU.
    pub const NPU_CONFIG: &str = "";
    pub const NPU_SCRATCH_BYTES: usize = 0;
    pub const NPU_FAST_SCRATCH_BYTES: usize = 0;
    pub static NPU_STREAMS: [edgeslim_ethos_u::Stream; 0] = [];
    pub static LEVEL_NPU: [&[u16]; LEVELS.len()] = [&[]; LEVELS.len()];
    pub const LEVEL_NPU_FLASH: [u32; LEVELS.len()] = [0; LEVELS.len()];
"#;

/// `widths.txt`: one configuration a line, comma-separated width indices (one per segment,
/// encoder first); blank lines and `#` comments ignored.
fn width_configs(model: &Model<'_>, text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let idx = line
            .split(',')
            .map(|v| v.trim().parse::<u8>())
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| format!("line {}: `{line}`: {e}", n + 1))?;
        if idx.len() != model.num_segments() {
            return Err(format!(
                "line {}: {} width indices for {} segments",
                n + 1,
                idx.len(),
                model.num_segments()
            ));
        }
        for (s, &i) in idx.iter().enumerate() {
            if usize::from(i) >= model.num_widths(s) {
                return Err(format!(
                    "line {}: width index {i} of segment {s}, which has {} widths",
                    n + 1,
                    model.num_widths(s)
                ));
            }
        }
        out.push(idx);
    }
    Ok(out)
}

/// Sizes of `opbench`'s buffers for re-running the convolution and fully connected ops
/// elsewhere: the largest weights, channel count, output and an im2col scratch bound.
fn write_op_maxima(s: &mut String, model: &Model<'_>) -> Result<(), Box<dyn Error>> {
    let (mut weights, mut channels, mut output, mut scratch) = (0, 0, 0, 0);
    for i in 0..model.num_ops() {
        let op = model.op(i).ok_or_else(|| format!("op {i} unreadable"))?;
        if !matches!(op.kind, OpKind::Conv2d | OpKind::FullyConnected) {
            continue;
        }
        let out = model
            .tensor(op.output)
            .ok_or_else(|| format!("op {i}: no output tensor"))?;
        weights = weights.max(op.weights_len);
        channels = channels.max(op.wshape[0]);
        output = output.max(out.bytes());
        // CMSIS-NN's im2col buffers hold at most two columns of kh x kw x channels int16.
        let taps = op.wshape[1] * op.wshape[2];
        scratch = scratch.max(4 * taps * op.wshape[0].max(op.wshape[3]));
    }
    writeln!(s, "/// Ops of the model.")?;
    writeln!(s, "pub const NUM_OPS: usize = {};", model.num_ops())?;
    writeln!(
        s,
        "/// Largest weight bytes of a convolution or fully connected op."
    )?;
    writeln!(s, "pub const MAX_OP_WEIGHTS: usize = {weights};")?;
    writeln!(s, "/// Most output channels of such an op (full width).")?;
    writeln!(s, "pub const MAX_OP_CHANNELS: usize = {channels};")?;
    writeln!(s, "/// Largest output bytes of such an op (full width).")?;
    writeln!(s, "pub const MAX_OP_OUTPUT: usize = {output};")?;
    writeln!(
        s,
        "/// A bound on the scratch bytes a reference kernel needs for such an op."
    )?;
    writeln!(s, "pub const MAX_OP_SCRATCH: usize = {};", scratch + 1024)?;
    Ok(())
}

/// No bundle yet: an empty level table that matches no model (and with the `ethos-u55`
/// feature no NPU stream).
fn no_levels() -> String {
    let mut s = String::from(
        r#"/// Whether a bundle's levels were generated.
pub const HAS_LEVELS: bool = false;
/// Whether the bundle's NPU command streams are built in (feature `ethos-u55`).
pub const HAS_NPU_STREAMS: bool = false;
/// No bundle yet: an empty level table that matches no model.
pub mod levels {
    pub const MODEL_HASH: &str = "";
    pub const MODEL_BODY_CRC: u32 = 0;
    pub const MODEL_BYTES: usize = 0;
    pub const SEGMENTS: usize = 0;
    pub const LEVELS: [(u32, [u8; SEGMENTS], u32); 0] = [];
"#,
    );
    if npu_feature() {
        s.push_str(NPU_EMPTY);
    }
    s.push_str("}\n");
    s
}

/// The second model of the `parse` program (`parse-bench.esm`, compiled by `cargo xtask
/// firmware` from models/mcu-bench-mtl), or an empty blob.
fn parse_bench(dir: &Path) -> Result<String, Box<dyn Error>> {
    let path = dir.join("parse-bench.esm");
    if !path.is_file() {
        return Ok(NO_PARSE_BENCH.to_owned());
    }
    let blob = fs::read(&path)?;
    let model =
        Model::parse(&blob).map_err(|e| format!("{}: invalid model blob: {e}", path.display()))?;
    Ok(format!(
        "/// The model whose parse cost the `parse` program measures (empty: not generated).\n\
         pub const PARSE_BENCH_NAME: &str = {:?};\n\
         /// Its blob, 16-byte aligned in flash.\n\
         pub static PARSE_BENCH: &Aligned<[u8; {}]> = &Aligned(*include_bytes!({:?}));\n",
        model.name(),
        blob.len(),
        path.canonicalize()?.display().to_string()
    ))
}

const NO_PARSE_BENCH: &str = r#"/// The model whose parse cost the `parse` program measures (empty: not generated).
pub const PARSE_BENCH_NAME: &str = "";
/// Its blob, 16-byte aligned in flash.
pub static PARSE_BENCH: &Aligned<[u8; 0]> = &Aligned([]);
"#;

fn no_assets(why: &str) -> String {
    let mut s = format!(
        "// Generated by edgeslim-firmware/build.rs: no model assets ({why}).\n\
         /// Whether the model assets were generated.\n\
         pub const AVAILABLE: bool = false;\n\
         /// Why they are missing.\n\
         pub const MISSING: &str = {why:?};\n\
         pub const MODEL_NAME: &str = \"\";\n\
         pub static MODEL: &Aligned<[u8; 0]> = &Aligned([]);\n\
         pub const ARENA_BYTES: usize = 0;\n\
         pub const INPUT_LEN: usize = 0;\n\
         pub const N_SAMPLES: usize = 0;\n\
         pub static SAMPLES: [[f32; INPUT_LEN]; N_SAMPLES] = [];\n\
         pub static WIDTH_CONFIGS: &[&[u8]] = &[];\n\
         pub const NUM_OPS: usize = 0;\n\
         pub const MAX_OP_WEIGHTS: usize = 0;\n\
         pub const MAX_OP_CHANNELS: usize = 0;\n\
         pub const MAX_OP_OUTPUT: usize = 0;\n\
         pub const MAX_OP_SCRATCH: usize = 0;\n"
    );
    s.push_str(NO_PARSE_BENCH);
    s.push_str(&no_levels());
    s
}
