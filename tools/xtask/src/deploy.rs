//! The firmware's model pipeline, run by `cargo xtask firmware` around the QEMU programs:
//!
//! 1. [`generate_model`]: compile the bundled `digits-mtl` with the host CLI and cut input
//!    samples out of its eval set, into `target/firmware-assets/` (never committed).
//! 2. [`latency_table`]: turn the `profile` program's log (SysTick ticks per segment under
//!    `-icount shift=0`) into an `edgeslim.latency/1` table for target [`TARGET`].
//! 3. [`bundle`]: `edgeslim profile|search|bundle --from-table` on that table; the bundle's
//!    Rust levels become the `deploy` program's `levels.rs`.
//! 4. [`check_deploy`]: run the same samples and levels through the host CLI
//!    (`edgeslim run --raw`) and require every int8 output the firmware logged to be equal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::Ctx;
use crate::cmd::{cmd, display, output, run};

/// The bundled model the firmware deploys.
pub const MODEL: &str = "digits-mtl";
/// The bundled model whose parse cost the `parse` program measures (the largest graph).
pub const PARSE_MODEL: &str = "mcu-bench-mtl";
/// Pinned: instructions `Model::parse` may take on the Cortex-M4 for [`PARSE_MODEL`]'s blob
/// (the `parse` program; measured 2026-12-02: 1318475, 6% below the pin; see
/// docs/cortex-m.md). A change that costs more fails `cargo xtask firmware`; raise the pin
/// only with a reason.
pub const PARSE_BUDGET: u64 = 1_400_000;
/// Input samples taken from the front of the model's eval set.
pub const SAMPLES: usize = 8;
/// Target name of the tables: Cortex-M4 instruction counts from QEMU, converted to time with
/// one instruction per cycle at the mps2 boards' 25 MHz.
pub const TARGET: &str = "cortex-m4-qemu-icount-25mhz-cpi1";
/// Instructions per SysTick tick under `-icount shift=0` (`qemu_m4::icount`).
pub const INSTRUCTIONS_PER_TICK: u64 = 40;
/// Assumed instructions per microsecond: 25 MHz, one instruction per cycle.
pub const INSTRUCTIONS_PER_US: f64 = 25.0;

/// Where the generated files live.
pub struct Assets {
    pub dir: PathBuf,
}

impl Assets {
    pub fn new(ctx: &Ctx) -> Self {
        Assets {
            dir: ctx.root.join("target/firmware-assets"),
        }
    }
    pub fn model(&self) -> PathBuf {
        self.dir.join("model.esm")
    }
    /// The second blob of the `parse` program ([`PARSE_MODEL`]).
    pub fn parse_bench(&self) -> PathBuf {
        self.dir.join("parse-bench.esm")
    }
    fn samples_npy(&self) -> PathBuf {
        self.dir.join("samples.npy")
    }
    pub fn table(&self) -> PathBuf {
        self.dir.join(format!("latency-{TARGET}.json"))
    }
    pub fn levels(&self) -> PathBuf {
        self.dir.join("levels.rs")
    }
    fn bundle_dir(&self) -> PathBuf {
        self.dir.join("bundle")
    }
}

/// The host CLI as the host tests built it: `cargo test --no-run --workspace` is the build
/// nextest runs, so after the host tests it is up to date and nothing is rebuilt. (`cargo run
/// -p edgeslim` would resolve features without the workspace's dev-dependencies and rebuild
/// tract and the compiler, minutes on a CI machine.) Resolved once per xtask run.
pub fn cli_binary(ctx: &Ctx) -> Result<PathBuf> {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = BIN.get() {
        return Ok(p.clone());
    }
    let mut c = ctx.cargo();
    c.args([
        "test",
        "--no-run",
        "--workspace",
        "--message-format=json-render-diagnostics",
    ])
    .stderr(Stdio::inherit());
    println!("$ {} (locating the edgeslim binary)", display(&c));
    let out = c.output().context("could not start cargo")?;
    ensure!(
        out.status.success(),
        "`cargo test --no-run --workspace` failed ({})",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let exe = text
        .lines()
        .filter(|l| {
            l.contains(r#""reason":"compiler-artifact""#)
                && l.contains(r#""kind":["bin"]"#)
                && l.contains(r#""name":"edgeslim""#)
                // The program itself, not its unit-test harness.
                && l.contains(r#""test":false"#)
        })
        .find_map(|l| {
            let k = l.find(r#""executable":""#)? + r#""executable":""#.len();
            let rest = &l[k..];
            Some(PathBuf::from(&rest[..rest.find('"')?]))
        })
        .ok_or_else(|| anyhow!("cargo built no `edgeslim` binary (tools/cli)"))?;
    Ok(BIN.get_or_init(|| exe).clone())
}

/// `edgeslim <args>`, the binary the host tests built ([`cli_binary`]).
fn edgeslim(ctx: &Ctx, assets: &Assets) -> Result<Command> {
    let mut c = cmd(cli_binary(ctx)?);
    c.current_dir(&ctx.root)
        // Keep the eval cache with the other generated files.
        .env("EDGESLIM_CACHE", assets.dir.join("cache"));
    Ok(c)
}

/// Step 1: the model blob and the input samples. Stale files of an earlier run go first, so
/// nothing is built from them.
pub fn generate_model(ctx: &Ctx, assets: &Assets) -> Result<()> {
    std::fs::create_dir_all(&assets.dir)
        .with_context(|| format!("creating {}", assets.dir.display()))?;
    for f in [
        assets.model(),
        assets.parse_bench(),
        assets.levels(),
        assets.table(),
        assets.dir.join("samples.f32"),
        assets.samples_npy(),
    ] {
        if f.exists() {
            std::fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
        }
    }
    // Compiles bundled model `name` to `out` with the host CLI.
    let compile = |name: &str, out: &Path| -> Result<()> {
        let src = ctx.root.join("models").join(name);
        run(edgeslim(ctx, assets)?
            .arg("compile")
            .arg(src.join("model.onnx"))
            .arg("-o")
            .arg(out)
            .arg("--calib")
            .arg(src.join("calib.npy")))
    };
    compile(MODEL, &assets.model()).context("compiling the firmware's model with the host CLI")?;
    compile(PARSE_MODEL, &assets.parse_bench())
        .with_context(|| format!("compiling {PARSE_MODEL} for the `parse` program"))?;
    // The eval set is an .npz: numpy (installed by setup for the model checks) cuts the
    // samples, NCHW for the host CLI and NHWC float32 little-endian for the firmware.
    let script = "import sys, numpy as np\n\
                  x = np.load(sys.argv[1])['x'][:int(sys.argv[2])].astype('<f4')\n\
                  np.save(sys.argv[3], x)\n\
                  np.ascontiguousarray(x.transpose(0, 2, 3, 1)).tofile(sys.argv[4])\n";
    run(cmd("python3")
        .arg("-c")
        .arg(script)
        .arg(ctx.root.join("models").join(MODEL).join("eval.npz"))
        .arg(SAMPLES.to_string())
        .arg(assets.samples_npy())
        .arg(assets.dir.join("samples.f32")))
    .context("cutting input samples (needs numpy: `cargo xtask setup`)")?;
    Ok(())
}

// ---- the parse log ----

/// One line of the `parse` program's log.
#[derive(Debug, PartialEq)]
pub struct ParseCost {
    pub model: String,
    pub bytes: u64,
    pub ops: u64,
    pub tensors: u64,
    pub instructions: u64,
}

/// The `parse` program's lines.
pub fn parse_costs(log: &str) -> Result<Vec<ParseCost>> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.trim().strip_prefix("INFO").map(str::trim_start) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix("parse model ") else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let [model, "bytes", b, "ops", o, "tensors", t, "instructions", i] = f.as_slice() else {
            bail!("unexpected parse line: `{line}`");
        };
        let num = |s: &str| crate::cmd::number(s, line);
        out.push(ParseCost {
            model: (*model).to_owned(),
            bytes: num(b)?,
            ops: num(o)?,
            tensors: num(t)?,
            instructions: num(i)?,
        });
    }
    Ok(out)
}

/// Checks the `parse` program's log: both models parsed, [`PARSE_MODEL`] within
/// [`PARSE_BUDGET`] instructions. Prints the figures.
pub fn check_parse(log: &str) -> Result<()> {
    let costs = parse_costs(log)?;
    if costs.len() != 2 {
        bail!(
            "the `parse` program logged {} models, expected 2 (the firmware's and {PARSE_MODEL})",
            costs.len()
        );
    }
    for c in &costs {
        println!(
            "parse {}: {} instructions for {} bytes, {} ops, {} tensors ({:.0} per op + tensor)",
            c.model,
            c.instructions,
            c.bytes,
            c.ops,
            c.tensors,
            c.instructions as f64 / (c.ops + c.tensors).max(1) as f64
        );
    }
    let big = &costs[1];
    if big.instructions == 0 || big.instructions > PARSE_BUDGET {
        bail!(
            "Model::parse of {PARSE_MODEL} ({}) took {} instructions on the Cortex-M4, over the \
             pinned {PARSE_BUDGET} (deploy.rs PARSE_BUDGET)",
            big.model,
            big.instructions
        );
    }
    Ok(())
}

// ---- the profile log ----

/// The `profile` program's log, parsed.
#[derive(Debug, Default, PartialEq)]
pub struct ProfileLog {
    pub model_hash: String,
    /// Segment name and width multipliers (as f32, exactly as in the blob).
    pub segments: Vec<(String, Vec<f32>)>,
    /// Task name and its decoder segment.
    pub tasks: Vec<(String, usize)>,
    pub runs: Vec<ProfileRun>,
    /// (instructions, ticks) of the calibration loop.
    pub calibration: Option<(u64, u64)>,
    /// Ticks of the inference between the plugin markers.
    pub marked_ticks: Option<u64>,
}

/// One configuration of the profile log, in ticks.
#[derive(Debug, PartialEq)]
pub struct ProfileRun {
    pub widths: Vec<u8>,
    pub mask: u32,
    /// Whole inference, no observer.
    pub total: u64,
    /// Whole inference with the segment timer.
    pub observed: u64,
    /// Per segment (0 for segments that did not run).
    pub segments: Vec<u64>,
}

/// The message of a `{L} {s}` log line at level INFO.
fn info_messages(log: &str) -> impl Iterator<Item = &str> {
    log.lines()
        .filter_map(|l| l.trim_end().strip_prefix("INFO "))
        .map(str::trim_start)
}

/// `[1, 2, 3]` as numbers.
fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| anyhow!("expected a [..] list, found {s:?}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().map_err(|_| anyhow!("bad number {v:?} in {s:?}")))
        .collect()
}

fn num<T: std::str::FromStr>(s: Option<&str>, what: &str, line: &str) -> Result<T> {
    let s = s.ok_or_else(|| anyhow!("no {what} in {line:?}"))?;
    s.parse()
        .map_err(|_| anyhow!("bad {what} {s:?} in {line:?}"))
}

impl ProfileLog {
    pub fn parse(log: &str) -> Result<Self> {
        let mut p = ProfileLog::default();
        for m in info_messages(log) {
            if let Some(r) = m.strip_prefix("marked run ticks ") {
                p.marked_ticks = Some(num(Some(r.trim()), "ticks", m)?);
            } else if let Some(r) = m.strip_prefix("calibrate instructions ") {
                let (n, t) = r
                    .split_once(" ticks ")
                    .ok_or_else(|| anyhow!("malformed {m:?}"))?;
                p.calibration = Some((num(Some(n), "instructions", m)?, num(Some(t), "ticks", m)?));
            } else if let Some(h) = m.strip_prefix("model_hash ") {
                p.model_hash = h.trim().to_owned();
            } else if let Some(r) = m.strip_prefix("segment ") {
                let mut it = r.splitn(3, ' ');
                let i: usize = num(it.next(), "segment index", m)?;
                let name = it.next().ok_or_else(|| anyhow!("no name in {m:?}"))?;
                let bits: Vec<u32> = list(it.next().unwrap_or(""))?;
                ensure!(i == p.segments.len(), "segment {i} out of order in {m:?}");
                let widths = bits.into_iter().map(f32::from_bits).collect();
                p.segments.push((name.to_owned(), widths));
            } else if let Some(r) = m.strip_prefix("task ") {
                let f: Vec<&str> = r.split(' ').collect();
                ensure!(f.len() == 4 && f[2] == "segment", "malformed {m:?}");
                p.tasks
                    .push((f[1].to_owned(), num(Some(f[3]), "task segment", m)?));
            } else if let Some(r) = m.strip_prefix("run widths ") {
                let (widths, rest) = r
                    .split_once(']')
                    .ok_or_else(|| anyhow!("malformed {m:?}"))?;
                let widths = list(&format!("{widths}]"))?;
                let (head, segs) = rest
                    .split_once(" segments ")
                    .ok_or_else(|| anyhow!("no segments in {m:?}"))?;
                let f: Vec<&str> = head.split_whitespace().collect();
                ensure!(
                    f.len() == 6 && f[0] == "mask" && f[2] == "total" && f[4] == "observed",
                    "malformed {m:?}"
                );
                p.runs.push(ProfileRun {
                    widths,
                    mask: num(Some(f[1]), "mask", m)?,
                    total: num(Some(f[3]), "total", m)?,
                    observed: num(Some(f[5]), "observed", m)?,
                    segments: list(segs)?,
                });
            }
        }
        ensure!(
            !p.model_hash.is_empty(),
            "the profile log has no model_hash"
        );
        // The tick-to-instruction factor is checked, not assumed: a loop of a known number of
        // instructions must take that many / INSTRUCTIONS_PER_TICK ticks (one tick of slack
        // for the phase and the clock reads).
        let (n, t) = p
            .calibration
            .ok_or_else(|| anyhow!("the profile log has no calibration line"))?;
        let want = n / INSTRUCTIONS_PER_TICK;
        ensure!(
            t.abs_diff(want) <= 1,
            "calibration: {n} instructions took {t} SysTick ticks, expected {want}: QEMU does \
             not run with -icount shift=0 (1 ns per instruction, 40 per 25 MHz tick)"
        );
        ensure!(
            p.segments.len() >= 2,
            "the profile log names {} segments",
            p.segments.len()
        );
        ensure!(!p.runs.is_empty(), "the profile log has no runs");
        if let Some((name, _)) = p.segments.iter().find(|(_, w)| w.is_empty()) {
            bail!("the profile log gives segment {name} no widths");
        }
        for r in &p.runs {
            ensure!(
                r.widths.len() == p.segments.len() && r.segments.len() == p.segments.len(),
                "run {:?}: {} widths / {} segment counts for {} segments",
                r.widths,
                r.widths.len(),
                r.segments.len(),
                p.segments.len()
            );
        }
        Ok(p)
    }

    /// Decoder segments of the tasks in `mask`, in segment order.
    fn decoders(&self, mask: u32) -> Vec<usize> {
        let mut d: Vec<usize> = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(t, _)| mask >> t & 1 == 1)
            .map(|(_, (_, s))| *s)
            .filter(|&s| s > 0)
            .collect();
        d.sort_unstable();
        d.dedup();
        d
    }

    fn all_tasks(&self) -> u32 {
        (0..self.tasks.len()).fold(0, |m, t| m | 1 << t)
    }
}

fn us(ticks: u64) -> f64 {
    (ticks * INSTRUCTIONS_PER_TICK) as f64 / INSTRUCTIONS_PER_US
}

/// The latency table (JSON text) and the predicted latency of the fastest and the widest
/// all-task configurations, in microseconds.
pub struct Table {
    pub json: String,
    pub fastest_us: f64,
    pub widest_us: f64,
}

/// Step 2: an `edgeslim.latency/1` table from the profile log. The encoder's latency at width
/// `e` comes from the all-task run at `[e, 0, ..]`; decoder `s` at `(e, d)` from the all-task
/// run with `widths[0] = e, widths[s] = d` (its `by_encoder_us`; `latency_us` is the mean over
/// encoder widths); the overhead is the median of what the observed runs spent outside every
/// segment; every run is a measured config (unobserved ticks).
pub fn latency_table(p: &ProfileLog) -> Result<Table> {
    let all = p.all_tasks();
    let n_enc = p.segments[0].1.len();
    let find = |s: usize, e: usize, d: usize| -> Result<u64> {
        p.runs
            .iter()
            .find(|r| {
                // The encoder (s = 0) at width e: any all-task run with that width.
                r.mask == all
                    && usize::from(r.widths[0]) == e
                    && (s == 0 || usize::from(r.widths[s]) == d)
            })
            .map(|r| r.segments[s])
            .ok_or_else(|| {
                anyhow!(
                    "the profile log has no all-task run with encoder width {e} and segment {s} at width {d}"
                )
            })
    };
    let mut segs = Vec::new();
    let mut enc = Vec::new();
    for e in 0..n_enc {
        enc.push(us(find(0, e, 0)?));
    }
    segs.push(segment_json(&p.segments[0].0, &p.segments[0].1, &enc, None));
    let mut dec_rows: Vec<Vec<Vec<f64>>> = Vec::new();
    for (s, (name, widths)) in p.segments.iter().enumerate().skip(1) {
        let mut rows = Vec::new();
        for e in 0..n_enc {
            let mut row = Vec::new();
            for d in 0..widths.len() {
                row.push(us(find(s, e, d)?));
            }
            rows.push(row);
        }
        let mean: Vec<f64> = (0..widths.len())
            .map(|d| rows.iter().map(|r| r[d]).sum::<f64>() / n_enc as f64)
            .collect();
        segs.push(segment_json(name, widths, &mean, Some(&rows)));
        dec_rows.push(rows);
    }
    let mut outside: Vec<u64> = p
        .runs
        .iter()
        .map(|r| r.observed.saturating_sub(r.segments.iter().sum()))
        .collect();
    outside.sort_unstable();
    let overhead = us(outside[outside.len() / 2]);
    let mut configs = Vec::new();
    for r in &p.runs {
        let tasks: Vec<String> = p
            .decoders(r.mask)
            .iter()
            .map(|&s| format!("{:?}", p.segments[s].0))
            .collect();
        configs.push(format!(
            "    {{\"widths\": {:?}, \"tasks\": [{}], \"latency_us\": {}}}",
            r.widths,
            tasks.join(", "),
            us(r.total)
        ));
    }
    let predict = |e: usize, d: &dyn Fn(usize) -> usize| {
        overhead
            + enc[e]
            + dec_rows
                .iter()
                .map(|rows| {
                    let row = &rows[e];
                    row[d(row.len()).min(row.len() - 1)]
                })
                .sum::<f64>()
    };
    let fastest_us = predict(0, &|_| 0);
    let widest_us = predict(n_enc - 1, &|n| n - 1);
    let json = format!(
        "{{\n  \"format\": \"edgeslim.latency/1\",\n  \"model_hash\": {:?},\n  \"target\": {:?},\n  \
         \"unit\": \"us\",\n  \"overhead_us\": {overhead},\n  \"segments\": [\n{}\n  ],\n  \
         \"configs\": [\n{}\n  ]\n}}\n",
        p.model_hash,
        TARGET,
        segs.join(",\n"),
        configs.join(",\n")
    );
    Ok(Table {
        json,
        fastest_us,
        widest_us,
    })
}

fn floats(v: &[f64]) -> String {
    let s: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
    format!("[{}]", s.join(", "))
}

fn segment_json(name: &str, widths: &[f32], lat: &[f64], rows: Option<&[Vec<f64>]>) -> String {
    let w: Vec<f64> = widths.iter().map(|&m| f64::from(m)).collect();
    let mut s = format!(
        "    {{\"name\": {name:?}, \"widths\": {}, \"latency_us\": {}",
        floats(&w),
        floats(lat)
    );
    if let Some(rows) = rows {
        let r: Vec<String> = rows.iter().map(|r| floats(r)).collect();
        let _ = write!(s, ",\n     \"by_encoder_us\": [{}]", r.join(", "));
    }
    s.push('}');
    s
}

/// The bundle's budgets: just above the fastest configuration, a quarter and half of the way
/// to the widest, just above the widest; whole microseconds.
pub fn budgets(t: &Table) -> Vec<u32> {
    let f = t.fastest_us.ceil() as u32 + 1;
    let w = t.widest_us.ceil() as u32 + 1;
    let span = w.saturating_sub(f);
    let mut b = vec![f, f + span / 4, f + span / 2, f + span];
    b.dedup();
    b
}

/// A copy of the bundle's levels for another model (the hash's byte count and
/// `MODEL_BYTES` one higher), to check that `deploy` refuses it.
pub fn tampered_levels(levels: &str) -> Result<String> {
    let mut out = String::new();
    let mut changed = 0;
    for line in levels.lines() {
        if let Some(v) = line
            .strip_prefix("pub const MODEL_BYTES: usize = ")
            .and_then(|r| r.strip_suffix(';'))
        {
            let n: usize = v.parse().context("MODEL_BYTES")?;
            let _ = writeln!(out, "pub const MODEL_BYTES: usize = {};", n + 1);
            changed += 1;
        } else if let Some(h) = line
            .strip_prefix("pub const MODEL_HASH: &str = \"")
            .and_then(|r| r.strip_suffix("\";"))
        {
            let (head, n) = h.rsplit_once(':').context("MODEL_HASH")?;
            let n: usize = n.parse().context("MODEL_HASH")?;
            let _ = writeln!(out, "pub const MODEL_HASH: &str = \"{head}:{}\";", n + 1);
            changed += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    ensure!(
        changed == 2,
        "levels.rs has no MODEL_HASH / MODEL_BYTES to tamper with"
    );
    Ok(out)
}

/// The preference the bundle is searched with: the first task 3, the others 1.
pub fn preferences(p: &ProfileLog) -> String {
    let v: Vec<String> = p
        .tasks
        .iter()
        .enumerate()
        .map(|(i, (n, _))| format!("{n}={}", if i == 0 { 3 } else { 1 }))
        .collect();
    v.join(",")
}

/// Steps 2 and 3: write the table from the profile log, show it through the CLI, search one
/// budget and bundle three; the bundle's Rust levels become `levels.rs`.
pub fn bundle(ctx: &Ctx, assets: &Assets, profile_log: &str) -> Result<()> {
    let p = ProfileLog::parse(profile_log).context("parsing the profile program's log")?;
    let t = latency_table(&p)?;
    std::fs::write(assets.table(), &t.json)
        .with_context(|| format!("writing {}", assets.table().display()))?;
    println!("wrote {}", assets.table().display());
    let data = ctx.root.join("models").join(MODEL).join("eval.npz");
    let from = |c: &mut Command| {
        c.arg(assets.model())
            .args(["--target", TARGET, "--from-table"])
            .arg(assets.table());
    };
    // Loads and validates the table, prints it and the additive model's error on its configs.
    // Instruction counts are exact, so the additive model is asserted here (the host's timing
    // version of this check is a measurement, not a test: `tools/cli/tests/additive.rs`).
    let mut c = edgeslim(ctx, assets)?;
    c.arg("profile");
    from(&mut c);
    c.arg("-o").arg(assets.dir.join("latency-checked.json"));
    let shown = display(&c);
    println!("$ {shown}");
    let printed = output(&mut c).context("the CLI does not accept the icount latency table")?;
    print!("{printed}");
    let worst = additive_worst(&printed)?;
    ensure!(
        worst <= ADDITIVE_WORST_PERCENT,
        "the additive latency model is {worst}% off on the exact icount table (bound \
         {ADDITIVE_WORST_PERCENT}%)"
    );
    let budgets = budgets(&t);
    let prefer = preferences(&p);
    let mut c = edgeslim(ctx, assets)?;
    c.arg("search");
    from(&mut c);
    c.args(["--budget", &format!("{}us", budgets[budgets.len() / 2])])
        .args(["--prefer", &prefer, "--data"])
        .arg(&data);
    run(&mut c).context("search on the icount latency table")?;
    let list: Vec<String> = budgets.iter().map(|b| format!("{b}us")).collect();
    let mut c = edgeslim(ctx, assets)?;
    c.arg("bundle");
    from(&mut c);
    c.args(["--budgets", &list.join(",")])
        .args(["--prefer", &prefer, "--data"])
        .arg(&data)
        .arg("-o")
        .arg(assets.bundle_dir());
    run(&mut c).context("bundle on the icount latency table")?;
    let rs = assets.bundle_dir().join("bundle.rs");
    std::fs::copy(&rs, assets.levels())
        .with_context(|| format!("copying {} to {}", rs.display(), assets.levels().display()))?;
    Ok(())
}

// ---- exact instruction counts from the TCG plugin ----

/// Slack between the plugin's count and ticks x 40: the marker blocks (a few instructions),
/// the clock reads around them and one tick of phase.
const PLUGIN_SLACK: u64 = INSTRUCTIONS_PER_TICK + 16;

/// Cross-check the tick counts with exact instruction counts: build the TCG plugin of
/// `firmware/icount-plugin` with gcc, find the marker functions in the `profile` ELF with `nm`,
/// run it under the plugin and compare the plugin's intervals (the calibration loop, then the
/// widest inference) with the ticks the program logged. Returns the two exact counts.
pub fn plugin_cross_check(ctx: &Ctx, assets: &Assets, elf: &Path) -> Result<(u64, u64)> {
    let so = assets.dir.join("icount-plugin.so");
    run(cmd("gcc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&so)
        .arg(ctx.root.join("firmware/icount-plugin/icount.c")))
    .context("building the QEMU instruction-count plugin (needs gcc)")?;
    let syms =
        crate::cmd::output(cmd("nm").arg(elf)).with_context(|| format!("nm {}", elf.display()))?;
    let addr = |name: &str| -> Result<String> {
        syms.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 3 && f[2] == name).then(|| f[0].to_owned())
            })
            .ok_or_else(|| anyhow!("no symbol {name} in {}", elf.display()))
    };
    let (start, stop) = (
        addr("edgeslim_icount_start")?,
        addr("edgeslim_icount_stop")?,
    );
    let log = assets.dir.join("icount-plugin.log");
    if log.exists() {
        std::fs::remove_file(&log)?;
    }
    let mut c = cmd(ctx.root.join("firmware/qemu-run.sh"));
    c.arg(elf)
        .arg("-plugin")
        .arg(format!("{},start=0x{start},stop=0x{stop}", so.display()))
        .args(["-d", "plugin", "-D"])
        .arg(&log)
        .env("QEMU_RUN_LOG_FORMAT", "{L} {s}");
    let out = crate::cmd::output(&mut c).context("running profile under the plugin")?;
    let p = ProfileLog::parse(&out)?;
    let text =
        std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
    let counts: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("icount-plugin interval "))
        .map(|n| {
            n.trim()
                .parse()
                .map_err(|_| anyhow!("bad plugin line {n:?}"))
        })
        .collect::<Result<_>>()?;
    let (cal_n, cal_t) = p.calibration.context("no calibration line")?;
    let marked = p.marked_ticks.context("no `marked run ticks` line")?;
    ensure!(
        counts.len() == 2,
        "the plugin reported {} intervals, expected 2 (calibration, marked run): {text}",
        counts.len()
    );
    ensure!(
        counts[0].abs_diff(cal_n) <= PLUGIN_SLACK
            && counts[1].abs_diff(marked * INSTRUCTIONS_PER_TICK) <= PLUGIN_SLACK,
        "the plugin counted {} and {} instructions; the ticks say {} ({cal_t} ticks) and {} \
         ({marked} ticks): one tick is not {INSTRUCTIONS_PER_TICK} instructions",
        counts[0],
        counts[1],
        cal_t * INSTRUCTIONS_PER_TICK,
        marked * INSTRUCTIONS_PER_TICK
    );
    println!(
        "icount plugin: calibration loop {} instructions ({cal_t} ticks x {INSTRUCTIONS_PER_TICK} \
         = {}), widest inference {} instructions ({marked} ticks x {INSTRUCTIONS_PER_TICK} = {})",
        counts[0],
        cal_t * INSTRUCTIONS_PER_TICK,
        counts[1],
        marked * INSTRUCTIONS_PER_TICK
    );
    Ok((counts[0], counts[1]))
}

// ---- the deploy log and the host run ----

/// One output the firmware logged.
#[derive(Debug, PartialEq)]
pub struct LoggedOutput {
    pub level: usize,
    pub sample: usize,
    pub name: String,
    pub argmax: usize,
    /// h, w, c
    pub shape: [usize; 3],
    /// NHWC
    pub data: Vec<i8>,
}

/// The `deploy` program's log, parsed.
#[derive(Debug, Default, PartialEq)]
pub struct DeployLog {
    /// (widths, mask) per level.
    pub levels: Vec<(Vec<u8>, u32)>,
    pub outputs: Vec<LoggedOutput>,
    pub checksum: Option<u32>,
}

impl DeployLog {
    pub fn parse(log: &str) -> Result<Self> {
        let mut d = DeployLog::default();
        for m in info_messages(log) {
            if let Some(r) = m.strip_prefix("level ") {
                let (head, rest) = r
                    .split_once(" widths ")
                    .ok_or_else(|| anyhow!("malformed {m:?}"))?;
                let l: usize = num(head.split(' ').next(), "level", m)?;
                ensure!(l == d.levels.len(), "level {l} out of order in {m:?}");
                let (widths, mask) = rest
                    .split_once(" mask ")
                    .ok_or_else(|| anyhow!("no mask in {m:?}"))?;
                d.levels
                    .push((list(widths)?, num(Some(mask.trim()), "mask", m)?));
            } else if let Some(r) = m.strip_prefix("out ") {
                let (head, data) = r
                    .split_once(" data ")
                    .ok_or_else(|| anyhow!("no data in {m:?}"))?;
                let f: Vec<&str> = head.split(' ').collect();
                ensure!(
                    f.len() == 9 && f[3] == "argmax" && f[5] == "shape",
                    "malformed {m:?}"
                );
                d.outputs.push(LoggedOutput {
                    level: num(Some(f[0]), "level", m)?,
                    sample: num(Some(f[1]), "sample", m)?,
                    name: f[2].to_owned(),
                    argmax: num(Some(f[4]), "argmax", m)?,
                    shape: [
                        num(Some(f[6]), "h", m)?,
                        num(Some(f[7]), "w", m)?,
                        num(Some(f[8]), "c", m)?,
                    ],
                    data: list(data)?,
                });
            } else if let Some(r) = m.strip_prefix("checksum ") {
                d.checksum = Some(
                    u32::from_str_radix(r.trim(), 16)
                        .map_err(|_| anyhow!("bad checksum in {m:?}"))?,
                );
            }
        }
        ensure!(!d.levels.is_empty(), "the deploy log has no levels");
        Ok(d)
    }
}

/// FNV-1a 32 over int8 values, as the firmware computes its checksum.
pub fn fnv1a(data: impl IntoIterator<Item = i8>) -> u32 {
    data.into_iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b as u8)).wrapping_mul(0x0100_0193)
    })
}

/// A little-endian int8 `.npy` array: shape and data.
pub fn read_npy_i8(path: &Path) -> Result<(Vec<usize>, Vec<i8>)> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        b.starts_with(b"\x93NUMPY") && b.len() > 10,
        "{}: not a .npy file",
        path.display()
    );
    let (hlen, start) = match b[6] {
        1 => (usize::from(u16::from_le_bytes([b[8], b[9]])), 10),
        2 | 3 if b.len() > 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => bail!("{}: .npy version {v} not supported", path.display()),
    };
    let header = b
        .get(start..start + hlen)
        .map(String::from_utf8_lossy)
        .ok_or_else(|| anyhow!("{}: truncated header", path.display()))?;
    ensure!(
        header.contains("'descr': '|i1'") || header.contains("'descr': 'i1'"),
        "{}: not int8 ({header})",
        path.display()
    );
    ensure!(
        header.contains("'fortran_order': False"),
        "{}: Fortran order",
        path.display()
    );
    let shape_src = header
        .split_once("'shape': (")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(s, _)| s)
        .ok_or_else(|| anyhow!("{}: no shape in {header}", path.display()))?;
    let shape: Vec<usize> = shape_src
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| anyhow!("{}: bad shape {header}", path.display()))
        })
        .collect::<Result<_>>()?;
    let data: Vec<i8> = b[start + hlen..].iter().map(|&v| v as i8).collect();
    ensure!(
        data.len() == shape.iter().product::<usize>(),
        "{}: {} values for shape {shape:?}",
        path.display(),
        data.len()
    );
    Ok((shape, data))
}

/// Step 4: every level of the deploy log through the host CLI on the same samples; every
/// int8 value must be equal. The firmware's data is NHWC, the CLI's NCHW (or `[c]` for 1x1).
pub fn check_deploy(ctx: &Ctx, assets: &Assets, deploy_log: &str, profile_log: &str) -> Result<()> {
    let d = DeployLog::parse(deploy_log).context("parsing the deploy program's log")?;
    let p = ProfileLog::parse(profile_log).context("parsing the profile program's log")?;
    let logged: Vec<i8> = d
        .outputs
        .iter()
        .flat_map(|o| o.data.iter().copied())
        .collect();
    ensure!(
        d.checksum == Some(fnv1a(logged)),
        "the deploy log's checksum {:08x?} does not match the outputs it logged (log incomplete?)",
        d.checksum
    );
    let host_root = assets.dir.join("host");
    let mut compared = 0usize;
    for (l, (widths, mask)) in d.levels.iter().enumerate() {
        let spec: Vec<String> = p
            .segments
            .iter()
            .zip(widths)
            .map(|((name, ws), &i)| {
                ws.get(usize::from(i))
                    .map(|m| format!("{name}={m}"))
                    .ok_or_else(|| anyhow!("level {l}: width index {i} out of range for {name}"))
            })
            .collect::<Result<_>>()?;
        let tasks: Vec<&str> = p
            .tasks
            .iter()
            .enumerate()
            .filter(|(t, _)| mask >> t & 1 == 1)
            .map(|(_, (n, _))| n.as_str())
            .collect();
        let out_dir = host_root.join(format!("level{l}"));
        if out_dir.exists() {
            std::fs::remove_dir_all(&out_dir)?;
        }
        run(edgeslim(ctx, assets)?
            .arg("run")
            .arg(assets.model())
            .arg("--input")
            .arg(assets.samples_npy())
            .arg("--output-dir")
            .arg(&out_dir)
            .arg("--raw")
            .args(["--width", &spec.join(","), "--tasks", &tasks.join(",")]))
        .with_context(|| format!("host run of level {l}"))?;
        let mut host: BTreeMap<String, (Vec<usize>, Vec<i8>)> = BTreeMap::new();
        for e in std::fs::read_dir(&out_dir)? {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "npy")
                && let Some(stem) = path.file_stem()
            {
                host.insert(stem.to_string_lossy().into_owned(), read_npy_i8(&path)?);
            }
        }
        let fw: Vec<&LoggedOutput> = d.outputs.iter().filter(|o| o.level == l).collect();
        compared += compare_level(l, widths, *mask, &fw, &host, SAMPLES)?;
    }
    println!(
        "deploy: {} levels x {SAMPLES} samples, {compared} outputs bit-exact with the host CLI \
         (checksum {:08x})",
        d.levels.len(),
        d.checksum.unwrap_or(0)
    );
    Ok(())
}

/// Host outputs by name: shape (`[samples, c]` or `[samples, c, h, w]`) and int8 data.
pub type HostOutputs = BTreeMap<String, (Vec<usize>, Vec<i8>)>;

/// Compare what the firmware logged for level `l` with the host's outputs of the same level,
/// value by value; the first difference is an error naming the level, sample, output and
/// value. Returns the number of outputs compared.
pub fn compare_level(
    l: usize,
    widths: &[u8],
    mask: u32,
    fw: &[&LoggedOutput],
    host: &HostOutputs,
    samples: usize,
) -> Result<usize> {
    let fw_names: std::collections::BTreeSet<&str> = fw.iter().map(|o| o.name.as_str()).collect();
    let host_names: std::collections::BTreeSet<&str> = host.keys().map(String::as_str).collect();
    ensure!(
        fw_names == host_names,
        "level {l}: the firmware logged outputs {fw_names:?}, the host wrote {host_names:?}"
    );
    for s in 0..samples {
        for name in &fw_names {
            let n = fw
                .iter()
                .filter(|o| o.sample == s && o.name == *name)
                .count();
            ensure!(
                n == 1,
                "level {l}: the firmware logged output {name} of sample {s} {n} times"
            );
        }
    }
    for o in fw {
        let (shape, data) = host
            .get(&o.name)
            .ok_or_else(|| anyhow!("level {l}: no host output {}", o.name))?;
        let [h, w, c] = o.shape;
        let per = h * w * c;
        ensure!(
            shape.first() == Some(&samples)
                && shape[1..].iter().product::<usize>() == per
                && o.data.len() == per,
            "level {l} output {}: host shape {shape:?}, firmware {h}x{w}x{c} with {} values, \
             for {samples} samples",
            o.name,
            o.data.len()
        );
        let host_sample = data
            .get(o.sample * per..(o.sample + 1) * per)
            .ok_or_else(|| anyhow!("level {l}: the firmware logged sample {}", o.sample))?;
        for (i, &fv) in o.data.iter().enumerate() {
            // NHWC index i -> NCHW index.
            let (y, x, ch) = (i / (w * c), i / c % w, i % c);
            let hv = host_sample[(ch * h + y) * w + x];
            if fv != hv {
                bail!(
                    "NOT BIT-EXACT: level {l} (widths {widths:?}, mask {mask:#x}) sample {} \
                     output {} value {i} (h {y}, w {x}, c {ch}): firmware {fv}, host {hv}",
                    o.sample,
                    o.name
                );
            }
        }
    }
    Ok(fw.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = "\
INFO  calibrate instructions 2000000 ticks 50001
INFO  model_hash esm-crc32:6b768a40:121648
INFO  instructions_per_tick 40 (qemu -icount shift=0, SysTick at 25 MHz)
INFO  segment 0 encoder [1048576000, 1065353216]
INFO  segment 1 digit [1056964608, 1065353216]
INFO  segment 2 bold [1065353216]
INFO  task 0 digit segment 1
INFO  task 1 bold segment 2
INFO  run widths [0, 0, 0] mask 3 total 100 observed 110 segments [50, 30, 20]
INFO  run widths [0, 1, 0] mask 3 total 120 observed 130 segments [50, 50, 20]
INFO  run widths [1, 0, 0] mask 3 total 200 observed 210 segments [100, 60, 40]
INFO  run widths [1, 1, 0] mask 3 total 240 observed 250 segments [100, 100, 40]
INFO  run widths [1, 1, 0] mask 1 total 200 observed 210 segments [100, 100, 0]
INFO  done
";

    #[test]
    fn profile_log_to_table() {
        let p = ProfileLog::parse(PROFILE).unwrap();
        assert_eq!(p.model_hash, "esm-crc32:6b768a40:121648");
        assert_eq!(p.segments[0], ("encoder".to_owned(), vec![0.25, 1.0]));
        assert_eq!(p.tasks[1], ("bold".to_owned(), 2));
        assert_eq!(p.runs.len(), 5);
        assert_eq!(p.decoders(1), [1]);
        let t = latency_table(&p).unwrap();
        // 1 tick = 40 instructions = 1.6 us at 25 MHz; overhead: median of observed - sum = 10.
        assert!(t.json.contains("\"overhead_us\": 16,"), "{}", t.json);
        assert!(t.json.contains("\"latency_us\": [80, 160]"), "{}", t.json);
        assert!(
            t.json.contains("\"by_encoder_us\": [[48, 80], [96, 160]]"),
            "{}",
            t.json
        );
        assert!(
            t.json
                .contains("\"tasks\": [\"digit\"], \"latency_us\": 320}")
        );
        assert_eq!(t.fastest_us, 16.0 + 80.0 + 48.0 + 32.0);
        assert_eq!(t.widest_us, 16.0 + 160.0 + 160.0 + 64.0);
        assert_eq!(budgets(&t), vec![177, 233, 289, 401]);
        assert_eq!(preferences(&p), "digit=3,bold=1");
        // Without -icount the loop takes host time.
        let host_time = PROFILE.replace("ticks 50001", "ticks 1234");
        let e = ProfileLog::parse(&host_time).unwrap_err().to_string();
        assert!(e.contains("-icount"), "{e}");
    }

    #[test]
    fn tampering_changes_both_constants() {
        let src = "// x\npub const MODEL_HASH: &str = \"esm-crc32:0badf00d:99\";\n\
                   pub const MODEL_BODY_CRC: u32 = 0x0badf00d;\n\
                   pub const MODEL_BYTES: usize = 99;\n";
        let t = tampered_levels(src).unwrap();
        assert!(t.contains("\"esm-crc32:0badf00d:100\""));
        assert!(t.contains("MODEL_BYTES: usize = 100;"));
        assert!(t.contains("MODEL_BODY_CRC: u32 = 0x0badf00d;"));
        assert!(tampered_levels("pub const MODEL_HASH: &str = \"h-two\";\n").is_err());
    }

    #[test]
    fn deploy_log_parses_and_checksums() {
        let log = "\
INFO  model digits-mtl: esm-crc32:6b768a40:121648, arena 1536 bytes
INFO  level 0 budget_us 100 widths [0, 1, 0] mask 3
INFO  out 0 0 digit argmax 1 shape 1 1 3 data [-7, 21, -21]
INFO  out 0 0 bold argmax 1 shape 1 1 2 data [-50, 60]
INFO  checksum 00000000
";
        let d = DeployLog::parse(log).unwrap();
        assert_eq!(d.levels, vec![(vec![0, 1, 0], 3)]);
        assert_eq!(d.outputs[1].name, "bold");
        assert_eq!(d.outputs[0].data, [-7, 21, -21]);
        assert_eq!(d.outputs[0].shape, [1, 1, 3]);
        assert_eq!(d.checksum, Some(0));
        assert_eq!(fnv1a([]), 0x811c_9dc5);
        assert_eq!(fnv1a([b'a' as i8]), 0xe40c_292c);
        assert!(DeployLog::parse("INFO  nothing\n").is_err());
    }

    fn out(sample: usize, name: &str, shape: [usize; 3], data: &[i8]) -> LoggedOutput {
        LoggedOutput {
            level: 0,
            sample,
            name: name.to_owned(),
            argmax: 0,
            shape,
            data: data.to_vec(),
        }
    }

    #[test]
    fn compare_names_the_first_difference() {
        // Two samples; "seg" is 2x1x2 (NHWC), the host writes it NCHW.
        let fw = [
            out(0, "cls", [1, 1, 3], &[1, 2, 3]),
            out(0, "seg", [2, 1, 2], &[10, 20, 11, 21]),
            out(1, "cls", [1, 1, 3], &[4, 5, 6]),
            out(1, "seg", [2, 1, 2], &[12, 22, 13, 23]),
        ];
        let refs: Vec<&LoggedOutput> = fw.iter().collect();
        let mut host = HostOutputs::new();
        host.insert("cls".into(), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
        host.insert(
            "seg".into(),
            (vec![2, 2, 2, 1], vec![10, 11, 20, 21, 12, 13, 22, 23]),
        );
        assert_eq!(compare_level(0, &[0, 1], 3, &refs, &host, 2).unwrap(), 4);

        let mut bad = host.clone();
        if let Some((_, d)) = bad.get_mut("seg") {
            d[6] = 99; // sample 1, channel 1, h 0
        }
        let e = compare_level(0, &[0, 1], 3, &refs, &bad, 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("level 0") && e.contains("sample 1") && e.contains("output seg"),
            "{e}"
        );
        assert!(e.contains("firmware 22, host 99"), "{e}");

        let mut missing = host.clone();
        missing.remove("seg");
        assert!(compare_level(0, &[0, 1], 3, &refs, &missing, 2).is_err());
        // A sample the firmware did not log.
        assert!(compare_level(0, &[0, 1], 3, &refs[..2], &host, 2).is_err());
    }

    #[test]
    fn npy_int8() {
        let dir = std::env::temp_dir().join(format!("xtask-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let header = "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        let mut h = header.to_owned();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.bytes());
        b.extend([1u8, 2, 3, 255, 254, 128]);
        let p = dir.join("a.npy");
        std::fs::write(&p, &b).unwrap();
        let (shape, data) = read_npy_i8(&p).unwrap();
        assert_eq!(shape, [2, 3]);
        assert_eq!(data, [1, 2, 3, -1, -2, -128]);
        std::fs::write(&p, &b[..b.len() - 1]).unwrap();
        assert!(read_npy_i8(&p).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// Worst error of the additive latency model allowed on the exact QEMU instruction-count table,
/// in percent (measured: 0.4%).
const ADDITIVE_WORST_PERCENT: f64 = 2.0;

/// The worst error, in percent, from `edgeslim profile --from-table`'s line "additive model vs
/// N directly timed configs: median error X%, worst Y%".
fn additive_worst(printed: &str) -> Result<f64> {
    let line = printed
        .lines()
        .find(|l| l.starts_with("additive model vs"))
        .context("`edgeslim profile` printed no additive-model line for the icount table")?;
    let worst = line
        .rsplit_once("worst ")
        .and_then(|(_, w)| w.trim().strip_suffix('%'))
        .with_context(|| format!("no worst error in {line:?}"))?;
    worst
        .parse()
        .with_context(|| format!("worst error {worst:?} in {line:?}"))
}

#[cfg(test)]
mod additive_tests {
    use super::additive_worst;

    #[test]
    fn reads_the_worst_error() {
        let p = "x\nadditive model vs 20 directly timed configs: median error 0.2%, worst 0.4%\n";
        assert_eq!(additive_worst(p).unwrap(), 0.4);
        assert!(additive_worst("no such line").is_err());
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn parse_log_lines_and_budget() {
        let log = "INFO  parse model digits-mtl bytes 9000 ops 30 tensors 40 instructions 12345\n\
                   INFO  something else\n\
                   INFO parse model mcu-bench-mtl bytes 90000 ops 80 tensors 120 instructions 7\n";
        let c = parse_costs(log).expect("valid log");
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1],
            ParseCost {
                model: "mcu-bench-mtl".into(),
                bytes: 90000,
                ops: 80,
                tensors: 120,
                instructions: 7
            }
        );
        assert_eq!(c[0].instructions, 12345);
        check_parse(log).expect("7 instructions are within the pin");
        let over = log.replace(
            "instructions 7\n",
            &format!("instructions {}\n", PARSE_BUDGET + 1),
        );
        let err = check_parse(&over).expect_err("over the pin").to_string();
        assert!(err.contains("over the pinned"), "{err}");
        assert!(
            check_parse("INFO parse model a bytes 1 ops 1 tensors 1 instructions 1\n").is_err()
        );
        assert!(
            parse_costs("INFO parse model a bytes x ops 1 tensors 1 instructions 1\n").is_err()
        );
        assert!(parse_costs("INFO parse model a bytes 1\n").is_err());
    }
}
