//! `--target cortex-m4`: the model in QEMU's `mps2-an386` (Cortex-M4F) with exact instruction
//! counts, op by op, beside Arm's CMSIS-NN on the same layers when `CMSIS_NN_DIR` is set.
//!
//! 1. **Assets.** The compiled model, the bench input (NHWC float32) and the width
//!    configurations (`widths.txt`, width indices) go to
//!    `target/edgeslim-bench-m4/<content hash>/` of the repository, the directory the firmware's
//!    `build.rs` reads through `EDGESLIM_FW_ASSETS`. The configurations are an asset, not compiled
//!    into the program: the model is compiled in anyway (one build per model), the CLI's own
//!    `--width` parser resolves them, and the program has one default (widest and narrowest)
//!    for `cargo xtask firmware`.
//! 2. **Build.** The firmware workspace (`firmware/`, its own workspace) builds its `opbench`
//!    program with Debian's rustc (`-Zbuild-std`, hence `RUSTC_BOOTSTRAP=1`; `RUSTFLAGS` removed
//!    because it would replace the link arguments of `firmware/.cargo/config.toml`), with
//!    `CMSIS_NN_DIR` passed on when set (`firmware/edgeslim-firmware/build_cmsis_nn.rs` compiles CMSIS-NN
//!    with `arm-none-eabi-gcc`, single rounding as edgeslim).
//! 3. **Run.** The firmware's runner (`firmware/qemu-run.sh`: QEMU with `-icount shift=0`,
//!    defmt frames decoded by `defmt-print`) runs a copy of the program; its log is parsed
//!    ([`parse`]) into the report.
//! 4. **Checks.** The program's outputs must equal the host interpreter's bit for bit at every
//!    configuration, and every CMSIS-NN layer's output edgeslim's byte for byte; a difference
//!    is printed with the report and fails the command, naming the op.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use edgeslim_compiler::run::split_batch;
use edgeslim_compiler::width::describe;
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::{
    Agreement, BENCH_FORMAT, BenchArgs, BenchReport, EngineResult, InputInfo, Machine, Prepared,
    Ratio, bench_input, width_configs,
};

/// Debian's rustc: the firmware builds `core` from source (`-Zbuild-std`), and rustup's
/// toolchains here ship no library source (docs/firmware-toolchain.md).
pub const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// The program that runs the model op by op.
pub const PROGRAM: &str = "opbench";
/// The command, for errors.
const WHAT: &str = "bench --target cortex-m4";
/// Instructions per SysTick tick under `-icount shift=0` (`edgeslim_firmware::icount`).
pub const INSTRUCTIONS_PER_TICK: u64 = 40;
/// What is set up by `cargo xtask setup`.
const SETUP_HINT: &str = "run `cargo xtask setup` in the repository (it installs Debian's \
                          rustc-web, rust-web-src, qemu-system-arm and defmt-print)";

/// What `--target cortex-m4` adds to the report.
#[derive(Debug, Clone, Serialize)]
pub struct M4Report {
    /// The emulated board and how instructions are counted.
    pub board: String,
    /// Instructions per SysTick tick: counts are multiples of it.
    pub instructions_per_tick: u64,
    /// `built` (from `CMSIS_NN_DIR`) or why CMSIS-NN was not measured.
    pub cmsis_nn: String,
    /// One entry per width configuration.
    pub configs: Vec<M4Config>,
}

/// One width configuration on the M4.
#[derive(Debug, Clone, Serialize)]
pub struct M4Config {
    /// `widest`, `narrowest` or the `--width` spec.
    pub label: String,
    /// `segment=multiplier,...`.
    pub config: String,
    /// Width indices, encoder first.
    pub widths: Vec<u8>,
    /// The whole inference (input quantization included), no observer.
    pub instructions: u64,
    /// Multiply-accumulates of its convolution and fully connected ops.
    pub macs: u64,
    /// `instructions / macs`.
    pub instructions_per_mac: Option<f64>,
    /// The inference with the per-op observer: `ops_instructions + overhead_instructions`.
    pub observed_instructions: u64,
    /// Sum of the ops' instructions.
    pub ops_instructions: u64,
    /// Outside the ops: input quantization, the interpreter's dispatch, the observer's clock
    /// reads.
    pub overhead_instructions: u64,
    /// Every op that ran, in execution order.
    pub ops: Vec<M4Op>,
    /// The convolution and fully connected ops CMSIS-NN ran: edgeslim's and CMSIS-NN's sums.
    pub cmsis_nn_layers: Option<LayerSums>,
    /// The int8 outputs (NHWC), equal to the host interpreter's.
    pub outputs: Vec<M4Output>,
}

/// One op on the M4.
#[derive(Debug, Clone, Serialize)]
pub struct M4Op {
    /// Index in the model.
    pub index: usize,
    /// `conv`, `depthwise`, `fc` or the op's name.
    pub kind: String,
    /// Its segment.
    pub segment: String,
    /// Multiply-accumulates at this configuration.
    pub macs: u64,
    /// edgeslim's instructions.
    pub instructions: u64,
    /// `instructions / macs` (ops with MACs).
    pub instructions_per_mac: Option<f64>,
    /// CMSIS-NN's instructions on the same input, weights and quantization.
    pub cmsis_nn_instructions: Option<u64>,
    /// `equal`, `differ`, `unsupported` (not a layer CMSIS-NN is asked to run), `error`
    /// (CMSIS-NN refused it) or `not measured`.
    pub cmsis_nn_check: String,
    /// For `differ`: the first differing element, edgeslim's and CMSIS-NN's values.
    pub first_difference: Option<(usize, i8, i8)>,
}

/// Instructions of the layers both ran.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LayerSums {
    /// Layers.
    pub layers: usize,
    /// Their MACs.
    pub macs: u64,
    /// edgeslim's instructions on them.
    pub edgeslim: u64,
    /// CMSIS-NN's.
    pub cmsis_nn: u64,
}

/// One int8 output.
#[derive(Debug, Clone, Serialize)]
pub struct M4Output {
    /// Output name.
    pub name: String,
    /// Values, NHWC at the active width.
    pub data: Vec<i8>,
}

// ---- the log ----

/// The `opbench` log, parsed.
#[derive(Debug, Default, PartialEq)]
pub struct Log {
    pub model: String,
    pub ops: usize,
    pub cmsis_built: bool,
    /// (instructions, ticks) of the calibration loop.
    pub calibration: Option<(u64, u64)>,
    pub configs: Vec<LogConfig>,
    pub done: bool,
}

/// One configuration of the log.
#[derive(Debug, Default, PartialEq)]
pub struct LogConfig {
    pub widths: Vec<u8>,
    pub ops: Vec<LogOp>,
    pub outputs: Vec<(String, Vec<i8>)>,
    /// (whole, observed, ops, overhead) instructions.
    pub run: Option<(u64, u64, u64, u64)>,
}

/// One `op` line.
#[derive(Debug, PartialEq)]
pub struct LogOp {
    pub index: usize,
    pub kind: String,
    pub segment: usize,
    pub macs: u64,
    pub instructions: u64,
    pub cmsis: Option<u64>,
    pub check: String,
    pub difference: Option<(usize, i8, i8)>,
}

/// One number of a log line (the profile log's parser, the line named in the error).
fn num<T: std::str::FromStr>(s: Option<&str>, what: &str, line: &str) -> Result<T> {
    crate::profile::log::num(s, what).with_context(|| format!("in `{line}`"))
}

/// A `[1, -2, 3]` list of a log line (the profile log's parser, the line named in the error).
fn list<T: std::str::FromStr>(s: &str, line: &str) -> Result<Vec<T>> {
    crate::profile::log::list(s, "numbers").with_context(|| format!("in `{line}`"))
}

/// Expect `key` as the next token.
fn key<'a>(it: &mut impl Iterator<Item = &'a str>, want: &str, line: &str) -> Result<()> {
    match it.next() {
        Some(k) if k == want => Ok(()),
        other => bail!("expected `{want}`, found {other:?} in `{line}`"),
    }
}

/// Parse the `opbench` log (defmt-print's `{L} {s}` format). Lines at other levels and
/// unknown messages are skipped; an ERROR line fails the parse with its message.
pub fn parse(log: &str) -> Result<Log> {
    let mut p = Log::default();
    for raw in log.lines() {
        let line = raw.trim();
        if let Some(e) = line.strip_prefix("ERROR") {
            bail!("the firmware reported: {}", e.trim());
        }
        // defmt-print pads the level: `INFO  op ...`.
        let Some(m) = line.strip_prefix("INFO").map(str::trim_start) else {
            continue;
        };
        let mut it = m.split_whitespace();
        match it.next() {
            Some("opbench") => {
                key(&mut it, "model", m)?;
                p.model = it.next().unwrap_or("").to_owned();
                key(&mut it, "ops", m)?;
                p.ops = num(it.next(), "op count", m)?;
                key(&mut it, "cmsis_nn", m)?;
                p.cmsis_built = it.next() == Some("built");
            }
            Some("calibrate") => {
                key(&mut it, "instructions", m)?;
                let n = num(it.next(), "instructions", m)?;
                key(&mut it, "ticks", m)?;
                p.calibration = Some((n, num(it.next(), "ticks", m)?));
            }
            Some("config") => {
                let k: usize = num(it.next(), "config index", m)?;
                ensure!(k == p.configs.len(), "config {k} out of order in `{m}`");
                key(&mut it, "widths", m)?;
                let rest: Vec<&str> = it.collect();
                p.configs.push(LogConfig {
                    widths: list(&rest.join(" "), m)?,
                    ..LogConfig::default()
                });
            }
            Some(kind @ ("op" | "run" | "out")) => {
                let k: usize = num(it.next(), "config index", m)?;
                let current = p.configs.len();
                let c = p
                    .configs
                    .get_mut(k)
                    .filter(|_| k + 1 == current)
                    .ok_or_else(|| anyhow!("`{m}` is not about the current config"))?;
                match kind {
                    "op" => c.ops.push(parse_op(&mut it, m)?),
                    "run" => {
                        let mut v = [0u64; 4];
                        for (slot, name) in
                            v.iter_mut().zip(["whole", "observed", "ops", "overhead"])
                        {
                            key(&mut it, name, m)?;
                            *slot = num(it.next(), name, m)?;
                        }
                        c.run = Some((v[0], v[1], v[2], v[3]));
                    }
                    _ => {
                        let name = it.next().ok_or_else(|| anyhow!("no name in `{m}`"))?;
                        let rest: Vec<&str> = it.collect();
                        c.outputs.push((name.to_owned(), list(&rest.join(" "), m)?));
                    }
                }
            }
            Some("done") => p.done = true,
            _ => {}
        }
    }
    ensure!(!p.model.is_empty(), "the log has no `opbench` line");
    let (n, t) = p
        .calibration
        .ok_or_else(|| anyhow!("the log has no calibration line"))?;
    let want = n / INSTRUCTIONS_PER_TICK;
    ensure!(
        t.abs_diff(want) <= 1,
        "calibration: {n} instructions took {t} SysTick ticks, expected {want}: QEMU does not \
         run with -icount shift=0 (1 ns per instruction, 40 per 25 MHz tick)"
    );
    ensure!(!p.configs.is_empty(), "the log has no configuration");
    for (k, c) in p.configs.iter().enumerate() {
        ensure!(c.run.is_some(), "config {k} has no `run` line");
        ensure!(!c.ops.is_empty(), "config {k} has no `op` lines");
    }
    ensure!(p.done, "the log ends before `done`");
    Ok(p)
}

fn parse_op<'a>(it: &mut impl Iterator<Item = &'a str>, m: &str) -> Result<LogOp> {
    let index = num(it.next(), "op index", m)?;
    let kind = it
        .next()
        .ok_or_else(|| anyhow!("no kind in `{m}`"))?
        .to_owned();
    key(it, "segment", m)?;
    let segment = num(it.next(), "segment", m)?;
    key(it, "macs", m)?;
    let macs = num(it.next(), "macs", m)?;
    key(it, "instr", m)?;
    let instructions = num(it.next(), "instructions", m)?;
    key(it, "cmsis_nn", m)?;
    let cmsis = match it.next() {
        Some("-") => None,
        s => Some(num(s, "CMSIS-NN instructions", m)?),
    };
    key(it, "check", m)?;
    let check = it
        .next()
        .ok_or_else(|| anyhow!("no check in `{m}`"))?
        .to_owned();
    let difference = if check == "differ" {
        key(it, "at", m)?;
        let at = num(it.next(), "position", m)?;
        key(it, "edgeslim", m)?;
        let a = num(it.next(), "value", m)?;
        key(it, "cmsis_nn", m)?;
        Some((at, a, num(it.next(), "value", m)?))
    } else {
        None
    };
    Ok(LogOp {
        index,
        kind,
        segment,
        macs,
        instructions,
        cmsis,
        check,
        difference,
    })
}

// ---- finding and running the firmware ----

/// The repository's firmware directory: `EDGESLIM_FIRMWARE_DIR`, else `firmware/` in the
/// current directory or one of its parents. `what` names the command in the error.
pub fn firmware_dir(what: &str) -> Result<PathBuf> {
    let is_fw = |d: &Path| {
        d.join("edgeslim-firmware/Cargo.toml").is_file() && d.join("qemu-run.sh").is_file()
    };
    if let Some(d) = std::env::var_os("EDGESLIM_FIRMWARE_DIR").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        ensure!(
            is_fw(&d),
            "EDGESLIM_FIRMWARE_DIR={} is not edgeslim's firmware directory (no edgeslim-firmware/Cargo.toml \
             and qemu-run.sh there)",
            d.display()
        );
        return Ok(d);
    }
    let cwd = std::env::current_dir().context("the current directory")?;
    for dir in cwd.ancestors() {
        let fw = dir.join("firmware");
        if is_fw(&fw) {
            return Ok(fw);
        }
    }
    bail!(
        "no firmware directory: `{what}` builds the firmware of the edgeslim repository \
         (firmware/edgeslim-firmware), and {} is not inside a checkout of it; run it from the repository \
         or set EDGESLIM_FIRMWARE_DIR to its firmware/ directory",
        cwd.display()
    )
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The tools a firmware build and QEMU run need, each missing one named with the fix; `what`
/// names the command in the error.
pub fn check_tools(cmsis: bool, what: &str) -> Result<()> {
    let mut missing = Vec::new();
    if !Path::new(DEBIAN_RUSTC).is_file() {
        missing.push(format!(
            "Debian's rustc ({DEBIAN_RUSTC}, package rustc-web: the firmware builds core from \
             source)"
        ));
    }
    if !on_path("qemu-system-arm") {
        missing.push("qemu-system-arm".to_owned());
    }
    if !on_path("defmt-print") {
        missing.push("defmt-print (decodes the firmware's log)".to_owned());
    }
    if cmsis && !on_path("arm-none-eabi-gcc") {
        missing.push(
            "arm-none-eabi-gcc (CMSIS_NN_DIR is set: it compiles CMSIS-NN; Debian packages \
             gcc-arm-none-eabi libnewlib-arm-none-eabi, or unset CMSIS_NN_DIR)"
                .to_owned(),
        );
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!("`{what}` needs {}: {SETUP_HINT}", missing.join(", "))
}

/// Write the assets into a directory named by their content (so that the same bench reuses
/// the last build), atomically: a complete directory or none.
pub fn write_assets(
    root: &Path,
    blob: &[u8],
    sample: &[f32],
    widths: &[Vec<u8>],
) -> Result<PathBuf> {
    let samples: Vec<u8> = sample.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut text =
        String::from("# width indices per configuration, encoder first (edgeslim bench)\n");
    for w in widths {
        let idx: Vec<String> = w.iter().map(u8::to_string).collect();
        text.push_str(&idx.join(","));
        text.push('\n');
    }
    let mut h = DefaultHasher::new();
    (blob, &samples, &text).hash(&mut h);
    let dir = root.join(format!("{:016x}", h.finish()));
    if dir.join("widths.txt").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let tmp = root.join(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for (name, bytes) in [
        ("model.esm", blob),
        ("samples.f32", &samples[..]),
        ("widths.txt", text.as_bytes()),
    ] {
        let f = tmp.join(name);
        std::fs::write(&f, bytes).with_context(|| format!("writing {}", f.display()))?;
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another bench wrote the same directory meanwhile.
        if !dir.join("widths.txt").is_file() {
            return Err(e).with_context(|| format!("creating {}", dir.display()));
        }
    }
    Ok(dir)
}

fn spinner(show: bool, msg: &str) -> ProgressBar {
    let bar = if show {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(msg.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `cargo build` of the firmware program `program` with these assets; the ELF's path.
fn build(
    fw: &Path,
    program: &str,
    assets: &Path,
    cmsis: Option<&Path>,
    progress: bool,
) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(fw)
        .args([
            "build",
            "--release",
            "-p",
            "edgeslim-firmware",
            "--bin",
            program,
            "--message-format=json-render-diagnostics",
        ])
        .env("RUSTC", DEBIAN_RUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("EDGESLIM_FW_ASSETS", assets)
        // They would replace the link arguments of firmware/.cargo/config.toml.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        // A host build's cargo (tests run under one) must not leak its target settings.
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    match cmsis {
        Some(d) => c.env("CMSIS_NN_DIR", d),
        None => c.env_remove("CMSIS_NN_DIR"),
    };
    let bar = spinner(
        progress,
        &format!("building the firmware ({program}, {})", fw.display()),
    );
    let out = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("could not start cargo in {}", fw.display()))?;
    bar.finish_and_clear();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "building the firmware program `{program}` in {} failed ({}):\n{}",
            fw.display(),
            out.status,
            stderr.trim_end()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] == "compiler-artifact"
            && v["target"]["name"] == program
            && let Some(exe) = v["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo built no `{program}` program in {}", fw.display())
}

/// Run the ELF of `program` through the firmware's runner; the decoded log. `status` turns a
/// log line into a new spinner message (progress through a long run).
fn run(
    fw: &Path,
    program: &str,
    elf: &Path,
    progress: bool,
    status: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let mut c = Command::new(fw.join("qemu-run.sh"));
    c.current_dir(fw)
        .arg(elf)
        .env("QEMU_RUN_LOG_FORMAT", "{L} {s}")
        // A larger model takes minutes of host time per configuration in QEMU.
        .env(
            "QEMU_TIMEOUT",
            std::env::var("EDGESLIM_QEMU_TIMEOUT").unwrap_or_else(|_| "1800".to_owned()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let bar = spinner(progress, "running in QEMU");
    let mut child = c
        .spawn()
        .with_context(|| format!("could not start {}", fw.join("qemu-run.sh").display()))?;
    let mut stderr = child.stderr.take().context("runner stderr")?;
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut log = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.context("reading the firmware's log")?;
            if let Some(msg) = status(&line) {
                bar.set_message(msg);
            }
            log.push_str(&line);
            log.push('\n');
        }
    }
    let status = child.wait().context("waiting for QEMU")?;
    bar.finish_and_clear();
    let stderr = err_thread.join().unwrap_or_default();
    if !status.success() {
        let why = match status.code() {
            Some(124) => "timed out (EDGESLIM_QEMU_TIMEOUT seconds, default 1800)".to_owned(),
            _ => format!("failed ({status})"),
        };
        bail!("`{program}` {why} in QEMU:\n{}{}", log, stderr.trim_end());
    }
    Ok(log)
}

/// Build the firmware program `program` with the assets in `assets` (with CMSIS-NN from
/// `cmsis`), run a copy of its ELF in QEMU (another build may replace the ELF meanwhile) and
/// return its decoded log.
pub fn build_and_run(
    fw: &Path,
    program: &str,
    assets: &Path,
    cmsis: Option<&Path>,
    progress: bool,
    status: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let elf = build(fw, program, assets, cmsis, progress)?;
    let copy = assets.join(format!("{program}-{}.elf", std::process::id()));
    std::fs::copy(&elf, &copy)
        .with_context(|| format!("copying {} to {}", elf.display(), copy.display()))?;
    let log = run(fw, program, &copy, progress, status);
    let _ = std::fs::remove_file(&copy);
    log
}

// ---- the bench ----

fn per_mac(instr: u64, macs: u64) -> Option<f64> {
    (macs > 0).then(|| instr as f64 / macs as f64)
}

/// What the M4 bench runs with, checked before the model is compiled.
pub struct Setup {
    /// The repository's `firmware/`.
    fw: PathBuf,
    /// `CMSIS_NN_DIR`, absolute.
    cmsis: Option<PathBuf>,
}

/// Find the firmware and the tools; every missing piece is named with its fix.
pub fn preflight() -> Result<Setup> {
    let fw = firmware_dir(WHAT)?;
    let cmsis = match std::env::var_os("CMSIS_NN_DIR").filter(|d| !d.is_empty()) {
        Some(d) => {
            let d = PathBuf::from(&d);
            let abs = d.canonicalize().with_context(|| {
                format!(
                    "CMSIS_NN_DIR={} does not exist (unset it to bench without CMSIS-NN)",
                    d.display()
                )
            })?;
            ensure!(
                abs.join("Include/arm_nnfunctions.h").is_file(),
                "CMSIS_NN_DIR={}: no Include/arm_nnfunctions.h there (unset it to bench without \
                 CMSIS-NN)",
                d.display()
            );
            Some(abs)
        }
        None => None,
    };
    check_tools(cmsis.is_some(), WHAT)?;
    Ok(Setup { fw, cmsis })
}

pub(super) fn bench_m4(a: &BenchArgs, p: &Prepared, setup: Setup) -> Result<BenchReport> {
    let Setup { fw, cmsis } = setup;
    let repo = fw
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let model = Model::parse(&p.blob).map_err(|e| anyhow!("invalid model blob: {e}"))?;
    let configs = width_configs(&model, &a.widths)?;
    let (x, input_source) = bench_input(&model, &p.dir)?;
    let (_, mut nhwc) = split_batch(&model, &x)?;
    let input = nhwc.pop().context("no input sample")?;
    let indices: Vec<Vec<u8>> = configs.iter().map(|(w, _)| w.as_slice().to_vec()).collect();
    let assets = write_assets(
        &repo.join("target/edgeslim-bench-m4"),
        &p.blob,
        &input,
        &indices,
    )?;
    let progress = !a.json;
    let n = configs.len();
    let status = |line: &str| {
        let k = line
            .split_whitespace()
            .skip_while(|w| *w != "config")
            .nth(1)
            .filter(|_| line.contains(" widths "))?;
        Some(format!(
            "running in QEMU: configuration {} of {n}",
            k.parse::<usize>().map_or(0, |k| k + 1)
        ))
    };
    let log = build_and_run(&fw, PROGRAM, &assets, cmsis.as_deref(), progress, &status)?;
    let parsed = parse(&log).with_context(|| format!("the `{PROGRAM}` log:\n{log}"))?;
    ensure!(
        parsed.configs.len() == configs.len(),
        "the firmware ran {} configurations, {} were asked",
        parsed.configs.len(),
        configs.len()
    );
    ensure!(
        parsed.cmsis_built == cmsis.is_some(),
        "the firmware was built {} CMSIS-NN although CMSIS_NN_DIR is {}",
        if parsed.cmsis_built {
            "with"
        } else {
            "without"
        },
        if cmsis.is_some() { "set" } else { "unset" }
    );

    // The host interpreter on the same input: the reference for the outputs.
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut interp = Interpreter::new(&model, &mut arena).map_err(|e| anyhow!("{e}"))?;
    let all = TaskMask::all(&model);
    let seg_name = |s: usize| {
        model
            .segment(s)
            .map_or_else(|| s.to_string(), |i| i.name.to_owned())
    };

    let mut out_configs = Vec::new();
    let mut engines = Vec::new();
    let mut ratios = Vec::new();
    let mut host_problems = Vec::new();
    let mut cmsis_problems = Vec::new();
    for ((w, label), c) in configs.iter().zip(&parsed.configs) {
        ensure!(
            c.widths == w.as_slice(),
            "the firmware ran widths {:?} for `{label}`, expected {:?}",
            c.widths,
            w.as_slice()
        );
        let (whole, observed, ops_sum, overhead) = c.run.unwrap_or_default();
        let host = interp
            .run(Input::F32(&input), w, all)
            .map_err(|e| anyhow!("host run at {label}: {e}"))?;
        let host: Vec<(&str, &[i8])> = host.iter().map(|o| (o.name, o.data)).collect();
        host_problems.extend(output_problems(label, &c.outputs, &host));
        let outputs = c
            .outputs
            .iter()
            .map(|(n, data)| M4Output {
                name: n.clone(),
                data: data.clone(),
            })
            .collect();
        let (ops, sums, problems) = ops_report(label, c, parsed.cmsis_built, &seg_name);
        cmsis_problems.extend(problems);
        let macs: u64 = c.ops.iter().map(|o| o.macs).sum();
        let config = describe(&model, w);
        engines.push(EngineResult {
            engine: "edgeslim".into(),
            config: Some(config.clone()),
            label: format!("edgeslim {label}"),
            how: "Interpreter::run(Input::F32(x), widths, every task) in QEMU mps2-an386 \
                  (Cortex-M4F), instructions counted exactly (SysTick under -icount shift=0); \
                  input quantization included"
                .into(),
            stats: None,
            not_measured: None,
            harness: None,
            instructions: Some(whole),
        });
        let cm_label = format!("cmsis-nn {label}");
        engines.push(EngineResult {
            engine: "cmsis-nn".into(),
            config: Some(config.clone()),
            label: cm_label,
            how: "arm_convolve_wrapper_s8 / arm_depthwise_conv_wrapper_s8 / \
                  arm_fully_connected_per_channel_s8 on each convolution and fully connected \
                  op's input, in the same QEMU run; instructions of those layers only"
                .into(),
            stats: None,
            not_measured: match (&cmsis, sums) {
                (None, _) => Some("CMSIS_NN_DIR is not set".into()),
                (Some(_), None) => Some("no layer CMSIS-NN runs in this model".into()),
                (Some(_), Some(_)) => None,
            },
            harness: None,
            instructions: sums.map(|s| s.cmsis_nn),
        });
        ratios.push(Ratio {
            edgeslim: format!("edgeslim {label}"),
            versus: "cmsis-nn".into(),
            ratio: sums.map(|s| s.edgeslim as f64 / s.cmsis_nn.max(1) as f64),
        });
        out_configs.push(M4Config {
            label: label.clone(),
            config,
            widths: w.as_slice().to_vec(),
            instructions: whole,
            macs,
            instructions_per_mac: per_mac(whole, macs),
            observed_instructions: observed,
            ops_instructions: ops_sum,
            overhead_instructions: overhead,
            ops,
            cmsis_nn_layers: sums,
            outputs,
        });
    }
    let agreement = vec![
        Agreement {
            reference: "host".into(),
            role: "check".into(),
            not_checked: None,
            ok: Some(host_problems.is_empty()),
            problems: host_problems,
            outputs: Vec::new(),
        },
        Agreement {
            reference: "cmsis-nn".into(),
            role: "check".into(),
            not_checked: cmsis.is_none().then(|| "CMSIS_NN_DIR is not set".into()),
            ok: cmsis.as_ref().map(|_| cmsis_problems.is_empty()),
            problems: cmsis_problems,
            outputs: Vec::new(),
        },
    ];
    Ok(BenchReport {
        format: BENCH_FORMAT,
        model: a.model.display().to_string(),
        onnx: p.onnx.as_ref().map(|o| o.display().to_string()),
        source: p.source.clone(),
        target: "cortex-m4".into(),
        machine: Machine {
            cpu: "Cortex-M4F (QEMU mps2-an386, 25 MHz)".into(),
            logical_cpus: 1,
            os: "none (thumbv7em-none-eabihf)".into(),
        },
        input: InputInfo {
            source: input_source,
            shape: x.shape.clone(),
        },
        iters: 1,
        rounds: 1,
        warmup: 0,
        timing: format!(
            "exact instruction counts, not time: SysTick ticks x {INSTRUCTIONS_PER_TICK} under \
             QEMU -icount shift=0 (1 ns per instruction), identical on every run; one inference \
             per configuration and engine, every task"
        ),
        engines,
        ratios,
        agreement,
        cortex_m4: Some(M4Report {
            board: "QEMU mps2-an386 (Cortex-M4F), -icount shift=0".into(),
            instructions_per_tick: INSTRUCTIONS_PER_TICK,
            cmsis_nn: match &cmsis {
                Some(_) => "built (CMSIS_NN_DIR)".into(),
                None => "not measured: CMSIS_NN_DIR is not set".into(),
            },
            configs: out_configs,
        }),
    })
}

/// Where the firmware's outputs differ from the host interpreter's (by output name).
fn output_problems(
    label: &str,
    logged: &[(String, Vec<i8>)],
    host: &[(&str, &[i8])],
) -> Vec<String> {
    let mut problems = Vec::new();
    for &(name, want) in host {
        match logged.iter().find(|(n, _)| n == name) {
            None => problems.push(format!("{label}: the firmware logged no output {name}")),
            Some((_, data)) if data[..] != *want => {
                let at = data
                    .iter()
                    .zip(want)
                    .position(|(x, y)| x != y)
                    .unwrap_or(data.len().min(want.len()));
                problems.push(format!(
                    "{label}: output {name} differs from the host's at element {at} ({} values \
                     on the M4, {} on the host)",
                    data.len(),
                    want.len()
                ));
            }
            Some(_) => {}
        }
    }
    problems
}

/// The ops of one configuration for the report, the sums over the layers CMSIS-NN ran, and
/// every CMSIS-NN difference or refusal, naming the op.
fn ops_report(
    label: &str,
    c: &LogConfig,
    cmsis_built: bool,
    seg_name: &dyn Fn(usize) -> String,
) -> (Vec<M4Op>, Option<LayerSums>, Vec<String>) {
    let mut ops = Vec::new();
    let mut sums: Option<LayerSums> = None;
    let mut problems = Vec::new();
    for op in &c.ops {
        let check = match (op.check.as_str(), cmsis_built) {
            ("none", _) | (_, false) => "not measured".to_owned(),
            (c, true) => c.to_owned(),
        };
        if let Some((at, x, y)) = op.difference {
            problems.push(format!(
                "{label}: op {} ({}) differs: output element {at} is {x} in edgeslim and {y} in \
                 CMSIS-NN",
                op.index, op.kind
            ));
        } else if check == "error" {
            problems.push(format!(
                "{label}: CMSIS-NN refused op {} ({}) (argument check or scratch size)",
                op.index, op.kind
            ));
        }
        if let Some(ci) = op.cmsis {
            let s = sums.get_or_insert(LayerSums {
                layers: 0,
                macs: 0,
                edgeslim: 0,
                cmsis_nn: 0,
            });
            s.layers += 1;
            s.macs += op.macs;
            s.edgeslim += op.instructions;
            s.cmsis_nn += ci;
        }
        ops.push(M4Op {
            index: op.index,
            kind: op.kind.clone(),
            segment: seg_name(op.segment),
            macs: op.macs,
            instructions: op.instructions,
            instructions_per_mac: per_mac(op.instructions, op.macs),
            cmsis_nn_instructions: op.cmsis,
            cmsis_nn_check: check,
            first_difference: op.difference,
        });
    }
    (ops, sums, problems)
}

/// The M4 part of the text report.
pub fn to_text(r: &BenchReport, m: &M4Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "edgeslim bench {} (target cortex-m4, {}; {})",
        r.model, r.source, m.board
    );
    let _ = writeln!(s, "input: {} {:?}", r.input.source, r.input.shape);
    let _ = writeln!(s, "counting: {}", r.timing);
    let _ = writeln!(s, "CMSIS-NN: {}", m.cmsis_nn);
    let big = |v: u64| {
        if v >= 1_000_000 {
            format!("{:.3} M", v as f64 / 1e6)
        } else {
            v.to_string()
        }
    };
    let pm = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    for c in &m.configs {
        let _ = writeln!(s, "\n{} ({})", c.label, c.config);
        let _ = writeln!(
            s,
            "  whole model: {} instructions, {} MACs, {} instructions/MAC",
            big(c.instructions),
            c.macs,
            pm(c.instructions_per_mac)
        );
        let _ = writeln!(
            s,
            "  per op (observed run): ops {} + overhead {} = {} instructions",
            c.ops_instructions, c.overhead_instructions, c.observed_instructions
        );
        let _ = writeln!(
            s,
            "  {:>4} {:<13} {:<10} {:>9} {:>11} {:>9} {:>11} {:>9} {:>7}  check",
            "op", "kind", "segment", "MACs", "edgeslim", "/MAC", "CMSIS-NN", "/MAC", "ratio",
        );
        for o in &c.ops {
            let (cm, cm_pm, ratio) = match o.cmsis_nn_instructions {
                Some(ci) => (
                    ci.to_string(),
                    pm(per_mac(ci, o.macs)),
                    format!("{:.2}", o.instructions as f64 / ci.max(1) as f64),
                ),
                None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
            };
            let check = match o.first_difference {
                Some((at, x, y)) => format!("DIFFER at {at}: {x} vs {y}"),
                None => o.cmsis_nn_check.clone(),
            };
            let _ = writeln!(
                s,
                "  {:>4} {:<13} {:<10} {:>9} {:>11} {:>9} {:>11} {:>9} {:>7}  {}",
                o.index,
                o.kind,
                o.segment,
                o.macs,
                o.instructions,
                pm(o.instructions_per_mac),
                cm,
                cm_pm,
                ratio,
                check
            );
        }
        match &c.cmsis_nn_layers {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "  the {} convolution / fully connected layers ({} MACs): edgeslim {} ({} /MAC), \
                     CMSIS-NN {} ({} /MAC), ratio {:.2}",
                    l.layers,
                    l.macs,
                    big(l.edgeslim),
                    pm(per_mac(l.edgeslim, l.macs)),
                    big(l.cmsis_nn),
                    pm(per_mac(l.cmsis_nn, l.macs)),
                    l.edgeslim as f64 / l.cmsis_nn.max(1) as f64
                );
            }
            None => {
                let _ = writeln!(s, "  CMSIS-NN: not measured");
            }
        }
    }
    let _ = writeln!(s, "\nchecks");
    for ag in &r.agreement {
        let what = match ag.reference.as_str() {
            "host" => "outputs equal to the host interpreter's, bit for bit",
            _ => "every CMSIS-NN layer's output equal to edgeslim's, byte for byte",
        };
        let verdict = match ag.ok {
            Some(true) => "yes".to_owned(),
            Some(false) => "NO".to_owned(),
            None => format!("not checked ({})", ag.not_checked.as_deref().unwrap_or("?")),
        };
        let _ = writeln!(s, "  {what}: {verdict}");
        for p in &ag.problems {
            let _ = writeln!(s, "    {p}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
INFO  opbench model digits ops 3 cmsis_nn built
INFO  calibrate instructions 200000 ticks 5000
INFO  config 0 widths [2, 1]
INFO  out 0 digit [1, -2, 3]
INFO  op 0 0 conv segment 0 macs 100 instr 400 cmsis_nn 480 check equal
INFO  op 0 1 Reshape segment 0 macs 0 instr 0 cmsis_nn - check unsupported
INFO  op 0 2 fc segment 1 macs 30 instr 120 cmsis_nn 160 check differ at 4 edgeslim -3 cmsis_nn 7
INFO  run 0 whole 600 observed 640 ops 520 overhead 120
INFO  done
";

    #[test]
    fn parses_the_log() {
        let p = parse(LOG).expect("a valid log");
        assert_eq!(p.model, "digits");
        assert_eq!(p.ops, 3);
        assert!(p.cmsis_built);
        assert_eq!(p.calibration, Some((200_000, 5000)));
        assert_eq!(p.configs.len(), 1);
        let c = &p.configs[0];
        assert_eq!(c.widths, [2, 1]);
        assert_eq!(c.outputs, [("digit".to_owned(), vec![1, -2, 3])]);
        assert_eq!(c.run, Some((600, 640, 520, 120)));
        assert_eq!(c.ops.len(), 3);
        assert_eq!(
            c.ops[0],
            LogOp {
                index: 0,
                kind: "conv".into(),
                segment: 0,
                macs: 100,
                instructions: 400,
                cmsis: Some(480),
                check: "equal".into(),
                difference: None,
            }
        );
        assert_eq!(c.ops[1].cmsis, None);
        assert_eq!(c.ops[2].difference, Some((4, -3, 7)));
    }

    #[test]
    fn rejects_broken_logs() {
        // Truncated: no `done`.
        let cut = LOG.replace("INFO  done\n", "");
        assert!(parse(&cut).unwrap_err().to_string().contains("done"));
        // Not run with -icount shift=0.
        let slow = LOG.replace("ticks 5000", "ticks 40000");
        assert!(parse(&slow).unwrap_err().to_string().contains("icount"));
        // A malformed op line names itself.
        let bad = LOG.replace("macs 100 instr 400", "macs x instr 400");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("macs") && e.contains("op 0 0 conv"), "{e}");
        // A line for a configuration that has not started.
        let early = LOG.replace("INFO  out 0 digit", "INFO  out 1 digit");
        assert!(parse(&early).is_err());
        // The firmware's own error.
        let err = format!("{LOG}ERROR config 1: arena too small\n");
        assert!(
            parse(&err)
                .unwrap_err()
                .to_string()
                .contains("arena too small")
        );
        assert!(parse("").is_err());
    }

    #[test]
    fn differences_name_the_op_and_the_output() {
        let p = parse(LOG).expect("a valid log");
        let c = &p.configs[0];
        let seg = |s: usize| format!("seg{s}");
        let (ops, sums, problems) = ops_report("widest", c, true, &seg);
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[1].cmsis_nn_check, "unsupported");
        assert_eq!(ops[2].segment, "seg1");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("op 2 (fc)") && problems[0].contains("element 4 is -3"),
            "{problems:?}"
        );
        let s = sums.expect("two layers ran through CMSIS-NN");
        assert_eq!(
            (s.layers, s.macs, s.edgeslim, s.cmsis_nn),
            (2, 130, 520, 640)
        );
        // Without CMSIS-NN nothing is compared.
        let (ops, _, _) = ops_report("widest", c, false, &seg);
        assert!(ops.iter().all(|o| o.cmsis_nn_check == "not measured"));

        let same: [(&str, &[i8]); 1] = [("digit", &[1, -2, 3])];
        assert!(output_problems("widest", &c.outputs, &same).is_empty());
        let other: [(&str, &[i8]); 2] = [("digit", &[1, -2, 4]), ("bold", &[0, 1])];
        let problems = output_problems("widest", &c.outputs, &other);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("output digit differs") && problems[0].contains("element 2"));
        assert!(problems[1].contains("no output bold"));
    }

    #[test]
    fn assets_are_written_once_per_content() {
        let root = std::env::temp_dir().join(format!("edgeslim-m4-assets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let a =
            write_assets(&root, b"blob", &[1.0, -2.5], &[vec![1, 0], vec![0, 0]]).expect("write");
        let b =
            write_assets(&root, b"blob", &[1.0, -2.5], &[vec![1, 0], vec![0, 0]]).expect("write");
        let c = write_assets(&root, b"blob", &[1.0, -2.5], &[vec![1, 0]]).expect("write");
        assert_eq!(a, b);
        assert_ne!(a, c);
        let widths = std::fs::read_to_string(a.join("widths.txt")).expect("widths.txt");
        assert!(widths.ends_with("1,0\n0,0\n"), "{widths}");
        let samples = std::fs::read(a.join("samples.f32")).expect("samples");
        assert_eq!(samples.len(), 8);
        assert_eq!(&samples[4..], &(-2.5f32).to_le_bytes());
        let _ = std::fs::remove_dir_all(&root);
    }
}
