//! Running external programs: echo the command line, never read stdin, and turn a bad exit
//! status into an error that names the command.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// A command ready to run, built like `Command` but displayable.
pub fn cmd(program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(program);
    // CI runs without a terminal; nothing we start may wait on stdin (QEMU and apt can spin
    // or block on it).
    c.stdin(Stdio::null());
    c
}

/// `VAR=value ... program args` as a user would type it (environment changes first).
pub fn display(c: &Command) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            parts.push(format!("{}={}", k.to_string_lossy(), quote(v)));
        }
    }
    // The cargo that runs us is a long toolchain path: show it as users type it.
    let program = c.get_program();
    if Path::new(program).file_name() == Some(OsStr::new("cargo")) {
        parts.push("cargo".to_owned());
    } else {
        parts.push(quote(program));
    }
    parts.extend(c.get_args().map(quote));
    let mut s = parts.join(" ");
    if let Some(dir) = c.get_current_dir()
        && std::env::current_dir().ok().as_deref() != Some(dir)
    {
        s = format!("(cd {} && {s})", dir.display());
    }
    s
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=+/.,:@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Run with inherited stdout/stderr; error if it cannot start or exits non-zero.
pub fn run(c: &mut Command) -> Result<()> {
    let shown = display(c);
    println!("$ {shown}");
    let status = c
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Run quietly and return stdout; error (with stderr) if it cannot start or exits non-zero.
pub fn output(c: &mut Command) -> Result<String> {
    let shown = display(c);
    let out = c
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run quietly; true iff it started and exited 0. For presence probes (`x --version`).
pub fn succeeds(c: &mut Command) -> bool {
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Is `program` an executable on PATH (or at that path)?
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return is_executable(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| is_executable(&d.join(program))))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Field `s` of a program's output line `line` as a number, or an error quoting both.
pub fn number(s: &str, line: &str) -> anyhow::Result<u64> {
    use anyhow::Context as _;
    s.parse::<u64>()
        .with_context(|| format!("bad number `{s}` in `{line}`"))
}
