//! Step 1: the generated files of `target/firmware-assets/`, and the host CLI that makes them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, ensure};
use cargo_metadata::{Message, TargetKind};

use super::{MODEL, PARSE_MODEL, SAMPLES};
use crate::Ctx;
use crate::cmd::{cmd, display, run};

/// The table's target as the CLI names it for a QEMU icount log at its defaults.
pub const TABLE_TARGET: &str = "cortex-m4-qemu-icount-25mhz-cpi1";

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
    pub fn samples_npy(&self) -> PathBuf {
        self.dir.join("samples.npy")
    }
    /// The `profile` program's log, as the CLI converts it.
    pub fn profile_log(&self) -> PathBuf {
        self.dir.join("profile.log")
    }
    pub fn table(&self) -> PathBuf {
        self.dir.join(format!("latency-{TABLE_TARGET}.json"))
    }
    pub fn levels(&self) -> PathBuf {
        self.dir.join("levels.rs")
    }
    pub fn bundle_dir(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    /// The bundle's NPU command streams and weights, where `levels.rs` includes them from.
    pub fn npu_dir(&self) -> PathBuf {
        self.dir.join("npu")
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
    let exe = Message::parse_stream(&out.stdout[..])
        .filter_map(|m| match m {
            Ok(Message::CompilerArtifact(a)) => Some(a),
            _ => None,
        })
        .find(|a| {
            a.target.name == "edgeslim"
                && a.target.kind.contains(&TargetKind::Bin)
                // The program itself, not its unit-test harness.
                && !a.profile.test
        })
        .and_then(|a| a.executable)
        .ok_or_else(|| anyhow!("cargo built no `edgeslim` binary (tools/cli)"))?;
    Ok(BIN.get_or_init(|| exe.into_std_path_buf()).clone())
}

/// `edgeslim <args>`, the binary the host tests built ([`cli_binary`]).
pub fn edgeslim(ctx: &Ctx, assets: &Assets) -> Result<Command> {
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
        assets.profile_log(),
        assets.dir.join("samples.f32"),
        assets.samples_npy(),
    ] {
        if f.exists() {
            std::fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
        }
    }
    let npu = assets.npu_dir();
    if npu.exists() {
        std::fs::remove_dir_all(&npu).with_context(|| format!("removing {}", npu.display()))?;
    }
    std::fs::create_dir_all(&npu).with_context(|| format!("creating {}", npu.display()))?;
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
