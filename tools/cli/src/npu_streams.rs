//! `edgeslim bundle ... --npu ethos-u55-128`: every segment each level runs, at the level's
//! widths, exported as TFLite and compiled by Vela into an Ethos-U command stream
//! (`--output-format raw`), written beside the bundle as `npu/<name>.cmd` and
//! `npu/<name>.weights`, with what firmware copies between the runtime's arena and the NPU's
//! scratch. A segment Vela cannot take whole (it leaves ops on the CPU) gets no stream at that
//! level: the firmware runs it on the CPU, and the command says so.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use edgeslim_compiler::NpyData;
use edgeslim_compiler::npy::parse_npz_only;
use edgeslim_runtime::{Model, WidthConfig};
use edgeslim_search::{Bundle, NpuStream, NpuStreams, NpuTransfer};
use edgeslim_tflite::{ExportOptions, Part, Port, export};

use crate::profile::npu::{TARGETS, cpu_operators, run_vela, tasks_of, vela};

/// One Vela raw compilation (`<stem>_vela.npz`), the entries firmware needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    /// The command stream.
    pub cmd: Vec<u8>,
    /// The encoded weights.
    pub weights: Vec<u8>,
    /// Regions of weights, scratch, fast scratch.
    pub regions: [u8; 3],
    /// Scratch and fast scratch bytes.
    pub scratch: [u32; 2],
    /// Per input and output: region, offset, bytes.
    pub inputs: Vec<(u8, u32, u32)>,
    /// See `inputs`.
    pub outputs: Vec<(u8, u32, u32)>,
}

fn ints(a: &BTreeMap<String, NpyData>, key: &str, what: &str) -> Result<(Vec<i64>, Vec<usize>)> {
    let d = a
        .get(key)
        .ok_or_else(|| anyhow!("{what}: Vela's raw output has no {key}"))?;
    let shape = d.shape().to_vec();
    let v = match d {
        NpyData::I64(x) => x.data.clone(),
        NpyData::I32(x) => x.data.iter().map(|&v| i64::from(v)).collect(),
        NpyData::U8(x) => x.data.iter().map(|&v| i64::from(v)).collect(),
        NpyData::I8(x) => x.data.iter().map(|&v| i64::from(v)).collect(),
        _ => bail!("{what}: Vela's {key} is not an integer array"),
    };
    Ok((v, shape))
}

fn bytes_of(a: &BTreeMap<String, NpyData>, key: &str, what: &str) -> Result<Vec<u8>> {
    match a.get(key) {
        Some(NpyData::U8(x)) => Ok(x.data.clone()),
        Some(NpyData::I8(x)) => Ok(x.data.iter().map(|&v| v as u8).collect()),
        Some(_) => bail!("{what}: Vela's {key} is not a byte array"),
        None => bail!("{what}: Vela's raw output has no {key}"),
    }
}

fn small<T: TryFrom<i64>>(v: i64, key: &str, what: &str) -> Result<T> {
    T::try_from(v).map_err(|_| anyhow!("{what}: Vela's {key} {v} is out of range"))
}

/// Parse Vela's raw output (an `.npz`; its quantization entries are pickled objects, which are
/// not read).
pub fn parse_raw(npz: &[u8], what: &str) -> Result<Raw> {
    let a = parse_npz_only(
        npz,
        &[
            "cmd_data",
            "weight_data",
            "weight_region",
            "scratch_region",
            "scratch_fast_region",
            "scratch_size",
            "scratch_fast_size",
            "input_shape",
            "input_elem_size",
            "input_region",
            "input_offset",
            "output_shape",
            "output_elem_size",
            "output_region",
            "output_offset",
        ],
    )
    .with_context(|| format!("{what}: Vela's raw output"))?;
    let one = |key: &str| -> Result<i64> {
        let (v, _) = ints(&a, key, what)?;
        match v.as_slice() {
            [x] => Ok(*x),
            _ => bail!(
                "{what}: Vela's {key} holds {} values, expected one",
                v.len()
            ),
        }
    };
    let ports = |dir: &str| -> Result<Vec<(u8, u32, u32)>> {
        let (shape, dims) = ints(&a, &format!("{dir}_shape"), what)?;
        let (elem, _) = ints(&a, &format!("{dir}_elem_size"), what)?;
        let (region, _) = ints(&a, &format!("{dir}_region"), what)?;
        let (offset, _) = ints(&a, &format!("{dir}_offset"), what)?;
        let n = elem.len();
        if region.len() != n || offset.len() != n || dims.first() != Some(&n) {
            bail!("{what}: Vela's {dir} entries disagree in length");
        }
        let rank = dims.get(1).copied().unwrap_or(0);
        (0..n)
            .map(|i| {
                if elem[i] != 1 {
                    bail!("{what}: {dir} {i} has {}-byte elements, not int8", elem[i]);
                }
                let count = shape[i * rank..(i + 1) * rank]
                    .iter()
                    .try_fold(1i64, |p, &d| p.checked_mul(d).filter(|_| d >= 0))
                    .ok_or_else(|| anyhow!("{what}: {dir} {i} has a bad shape"))?;
                Ok((
                    small(region[i], "region", what)?,
                    small(offset[i], "offset", what)?,
                    small(count, "size", what)?,
                ))
            })
            .collect()
    };
    Ok(Raw {
        cmd: bytes_of(&a, "cmd_data", what)?,
        weights: bytes_of(&a, "weight_data", what)?,
        regions: [
            small(one("weight_region")?, "weight_region", what)?,
            small(one("scratch_region")?, "scratch_region", what)?,
            small(one("scratch_fast_region")?, "scratch_fast_region", what)?,
        ],
        scratch: [
            small(one("scratch_size")?, "scratch_size", what)?,
            small(one("scratch_fast_size")?, "scratch_fast_size", what)?,
        ],
        inputs: ports("input")?,
        outputs: ports("output")?,
    })
}

/// Compile `tflite` with Vela's raw output; `None` when Vela leaves operators on the CPU.
fn compile_raw(vela: &str, tflite: &Path, config: &str, dir: &Path) -> Result<Option<Raw>> {
    let stdout = run_vela(vela, tflite, config, dir, &["--output-format", "raw"])?;
    let what = tflite.display().to_string();
    let cpu = cpu_operators(&stdout, &what)?;
    if cpu > 0 {
        return Ok(None);
    }
    let stem = tflite
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let npz = dir.join(format!("{stem}_vela.npz"));
    let bytes =
        std::fs::read(&npz).with_context(|| format!("{what}: Vela wrote no {}", npz.display()))?;
    parse_raw(&bytes, &what).map(Some)
}

/// Pair Vela's ports with the exported graph's, in order, checking sizes; the arena side from
/// the model's plan.
fn transfers(
    model: &Model<'_>,
    ports: &[Port],
    raw: &[(u8, u32, u32)],
    what: &str,
) -> Result<Vec<NpuTransfer>> {
    if ports.len() != raw.len() {
        bail!(
            "{what}: the TFLite graph has {} ports, Vela's stream {}",
            ports.len(),
            raw.len()
        );
    }
    ports
        .iter()
        .zip(raw)
        .map(|(p, &(region, offset, bytes))| {
            let t = model
                .tensor(p.tensor)
                .ok_or_else(|| anyhow!("{what}: tensor {} unreadable", p.tensor))?;
            let n: usize = p.shape.iter().product();
            if n != bytes as usize {
                bail!(
                    "{what}: tensor {:?} has {n} bytes, Vela's port {bytes}",
                    t.name
                );
            }
            Ok(NpuTransfer {
                region,
                offset,
                arena: u32::try_from(t.offset)
                    .map_err(|_| anyhow!("{what}: arena offset over 4 GiB"))?,
                bytes,
            })
        })
        .collect()
}

/// Compile the streams of every level of `bundle` for Vela configuration `config`, write them
/// under `out/npu/`, and attach them to the bundle. Returns the (segment, encoder width, width)
/// keys Vela could not take whole.
pub fn attach(
    model: &Model<'_>,
    bundle: &mut Bundle,
    config: &str,
    out: &Path,
    work: &Path,
) -> Result<Vec<(usize, u8, u8)>> {
    if !TARGETS.contains(&config) {
        bail!("--npu {config:?}: expected one of {}", TARGETS.join(", "));
    }
    let (vela, version) = vela()?;
    let npu_dir = out.join("npu");
    for d in [npu_dir.as_path(), work] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let mut streams: Vec<NpuStream> = Vec::new();
    let mut keys: BTreeMap<(usize, u8, u8), Option<u16>> = BTreeMap::new();
    let mut levels = Vec::with_capacity(bundle.levels.len());
    for level in &bundle.levels {
        let widths = WidthConfig::from_indices(&level.widths).map_err(|e| anyhow!("{e}"))?;
        let mut running: Vec<usize> = (0..model.num_encoder_segments()).collect();
        for t in 0..model.num_tasks() {
            let s = model.task_segment(t);
            if level.task_mask & (1 << t) != 0 && !running.contains(&s) {
                running.push(s);
            }
        }
        let mut ix = Vec::new();
        for s in running {
            // A segment's stream depends on its own width and on the width of the segment it
            // reads (the encoder stage it keys on); one that keys on none, on its own only.
            let read = model
                .segment_in(s)
                .map_or(level.widths[s], |i| level.widths[i]);
            let key = (s, read, level.widths[s]);
            if let Some(found) = keys.get(&key) {
                ix.extend(*found);
                continue;
            }
            let name = format!("s{s}-e{}-w{}", key.1, key.2);
            let what = format!("segment {s} at encoder width {} and width {}", key.1, key.2);
            let x = export(
                model,
                &ExportOptions {
                    widths,
                    tasks: tasks_of(model, s),
                    part: Part::Segment(s),
                },
            )
            .with_context(|| format!("{what}: TFLite export"))?;
            let file = work.join(format!("{name}.tflite"));
            std::fs::write(&file, &x.bytes)?;
            let Some(raw) = compile_raw(&vela, &file, config, work)? else {
                keys.insert(key, None);
                continue;
            };
            let (cmd, weights) = (format!("npu/{name}.cmd"), format!("npu/{name}.weights"));
            std::fs::write(out.join(&cmd), &raw.cmd)?;
            std::fs::write(out.join(&weights), &raw.weights)?;
            let len = |v: &[u8]| u32::try_from(v.len()).map_err(|_| anyhow!("{what}: over 4 GiB"));
            streams.push(NpuStream {
                segment: u8::try_from(s)?,
                encoder_width: key.1,
                width: key.2,
                command_stream: cmd,
                command_stream_bytes: len(&raw.cmd)?,
                weights,
                weight_bytes: len(&raw.weights)?,
                weight_region: raw.regions[0],
                scratch_region: raw.regions[1],
                fast_scratch_region: raw.regions[2],
                scratch_bytes: raw.scratch[0],
                fast_scratch_bytes: raw.scratch[1],
                inputs: transfers(model, &x.inputs, &raw.inputs, &what)?,
                outputs: transfers(model, &x.outputs, &raw.outputs, &what)?,
            });
            let i = u16::try_from(streams.len() - 1)?;
            keys.insert(key, Some(i));
            ix.push(i);
        }
        levels.push(ix);
    }
    bundle.npu = Some(NpuStreams {
        config: config.to_string(),
        vela: version,
        streams,
        levels,
    });
    bundle.validate()?;
    Ok(keys
        .into_iter()
        .filter_map(|(k, v)| v.is_none().then_some(k))
        .collect())
}
