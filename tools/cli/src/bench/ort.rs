//! ONNX Runtime, through a Python harness (`ort_harness.py`, run by `python3`): one session
//! with one intra-op and one inter-op thread, sequential execution, every graph optimization,
//! the CPU execution provider. The harness times `session.run(None, {input: x})` with
//! `time.perf_counter_ns` around each call, and times the same loop around an Identity model on
//! an input of the same shape: that is the harness's own per-call cost, subtracted from the
//! model's times (see [`super::stats::subtract_overhead`]).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

/// The harness script, run with `python3 -c`.
const HARNESS: &str = include_str!("ort_harness.py");

/// How ORT is called, for the report.
pub const HOW: &str = "python3 harness: onnxruntime.InferenceSession(model, CPUExecutionProvider; \
     SessionOptions intra_op_num_threads=1, inter_op_num_threads=1, ORT_SEQUENTIAL, \
     ORT_ENABLE_ALL); each call `session.run(None, {input: x})` timed with time.perf_counter_ns; \
     minus the median of the same loop around an Identity model on the same input";

/// The Python interpreter: `$EDGESLIM_PYTHON`, else `python3` on the PATH.
fn python() -> String {
    std::env::var("EDGESLIM_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A running harness.
pub struct Ort {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Versions and session details from the harness's first line.
    pub hello: Value,
}

/// Why ORT could not be started: the reason for "not measured", with how to fix it.
pub fn start(model: &Path, input_npy: &Path) -> Result<Ort> {
    let py = python();
    let mut child = Command::new(&py)
        .arg("-c")
        .arg(HARNESS)
        .arg(model)
        .arg(input_npy)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| anyhow!("cannot run {py}: {e} (install python3, or set EDGESLIM_PYTHON)"))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        bail!("cannot talk to the {py} harness");
    };
    let mut ort = Ort {
        child,
        stdin,
        stdout: BufReader::new(stdout),
        hello: Value::Null,
    };
    match ort.read() {
        Ok(hello) => {
            ort.hello = hello;
            Ok(ort)
        }
        Err(e) => {
            let missing = e.to_string().contains("is not installed");
            let _ = ort.child.kill();
            let _ = ort.child.wait();
            if missing {
                Err(anyhow!(
                    "{e}: install it with `python3 -m pip install -r \
                     models/requirements-check.txt` (or `cargo xtask setup`)"
                ))
            } else {
                Err(e)
            }
        }
    }
}

impl Ort {
    /// One reply line; an `error` field is an error.
    fn read(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .context("reading from the ONNX Runtime harness")?;
        if n == 0 {
            bail!("the ONNX Runtime harness exited without an answer");
        }
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("the ONNX Runtime harness said {:?}", line.trim()))?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            bail!("{e}");
        }
        Ok(v)
    }

    fn ask(&mut self, cmd: &str) -> Result<Value> {
        writeln!(self.stdin, "{cmd}")
            .and_then(|()| self.stdin.flush())
            .context("writing to the ONNX Runtime harness")?;
        self.read()
    }

    /// `n` timed calls of the model (`identity`: of the Identity model), microseconds each.
    pub fn time(&mut self, identity: bool, n: usize) -> Result<Vec<f64>> {
        let which = if identity { "identity" } else { "model" };
        let v = self.ask(&format!("time {which} {n}"))?;
        let ns = v
            .get("ns")
            .and_then(Value::as_array)
            .context("the harness's timing reply has no `ns` list")?;
        let us: Vec<f64> = ns
            .iter()
            .map(|t| t.as_f64().map(|t| t / 1000.0))
            .collect::<Option<_>>()
            .context("the harness's timings are not numbers")?;
        if us.len() != n {
            bail!("the harness timed {} calls, {n} were asked", us.len());
        }
        Ok(us)
    }

    /// The model's outputs on the input: (name, values in C order).
    pub fn outputs(&mut self) -> Result<Vec<(String, Vec<f32>)>> {
        let v = self.ask("outputs")?;
        let outs = v
            .get("outputs")
            .and_then(Value::as_array)
            .context("the harness's reply has no `outputs` list")?;
        outs.iter()
            .map(|o| {
                let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
                let data = o
                    .get("data")
                    .and_then(Value::as_array)
                    .and_then(|d| {
                        d.iter()
                            .map(|x| x.as_f64().map(|x| x as f32))
                            .collect::<Option<Vec<f32>>>()
                    })
                    .with_context(|| format!("output {name}: no numeric `data`"))?;
                Ok((name.to_string(), data))
            })
            .collect()
    }

    /// `onnxruntime 1.x (python 3.y)`, for the report.
    pub fn version(&self) -> String {
        let s = |k: &str| self.hello.get(k).and_then(Value::as_str).unwrap_or("?");
        format!("onnxruntime {} (python {})", s("onnxruntime"), s("python"))
    }
}

impl Drop for Ort {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}
