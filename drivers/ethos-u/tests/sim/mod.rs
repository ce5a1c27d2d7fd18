//! A simulated Ethos-U55 behind the driver's `Registers` trait, and stream tables built from a
//! compiled model's plan.
//!
//! The simulation checks what the driver programmed when it is started (soft reset level, AXI
//! set-up, `QBASE`/`QSIZE` at the stream's NPU commands, `BASEP` of the weight, scratch and
//! fast scratch regions at their buffers, the Q-channels off) and then "executes" the stream:
//! it reads the segment's inputs from its scratch at the transfer offsets, runs the segment's
//! ops on the CPU with the runtime (`run_op`) in a shadow arena at the stream's widths, and
//! writes the outputs into its scratch at the transfer offsets, as Vela's command stream would.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use edgeslim_compiler::{CompileOptions, compile};
use edgeslim_ethos_u::regs::{self, status};
use edgeslim_ethos_u::{Registers, Stream, Transfer};
use edgeslim_runtime::{Model, WidthConfig, run_op};

/// Vela 5.2's `CONFIG` and `ID` words for an ethos-u55-128 (its driver_actions.py).
pub const U55_128_CONFIG: u32 = 0x1807;
pub const U55_256_CONFIG: u32 = 0x3008;
pub const VELA_ID: u32 = 0x1006_0000;

/// The bundled digits-mtl model, compiled once per test binary; a missing model fails.
pub fn blob() -> &'static [u8] {
    static BLOB: OnceLock<Vec<u8>> = OnceLock::new();
    BLOB.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/digits-mtl/model.onnx");
        let opts = CompileOptions {
            calib: Some(path.with_file_name("calib.npy")),
            max_calib_samples: 64,
            progress: false,
        };
        compile(&path, &opts)
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
            .blob
    })
}

/// `len` bytes, 16-byte aligned, for the rest of the test binary.
pub fn aligned(len: usize, fill: impl Fn(usize) -> u8) -> &'static mut [u8] {
    let v = vec![0u8; len + 15].leak();
    let off = v.as_ptr().align_offset(16);
    let s = &mut v[off..off + len];
    for (i, b) in s.iter_mut().enumerate() {
        *b = fill(i);
    }
    s
}

/// A Vela payload (`COP1`, optimizer config, no-ops to 16-byte alignment, command stream) with
/// `words` command words.
pub fn payload(config: u32, words: &[u32]) -> &'static [u8] {
    let mut w = vec![
        u32::from_le_bytes(*b"COP1"),
        0x0010_0001,
        config,
        VELA_ID,
        5,
        5,
        5,
        2 | (words.len() as u32) << 16,
    ];
    w.extend_from_slice(words);
    let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
    aligned(bytes.len(), |i| bytes[i])
}

/// The width configuration a stream was compiled at (other segments at 0).
pub fn widths_of(model: &Model<'_>, s: &Stream) -> WidthConfig {
    let mut w = WidthConfig::narrowest(model);
    w.set(0, s.encoder_width).expect("encoder");
    w.set(usize::from(s.segment), s.width).expect("segment");
    w
}

/// The tensors segment `seg` reads from outside and the ones it writes that other segments or
/// the outputs read, as the bundle generator pairs them with Vela's ports.
pub fn segment_io(model: &Model<'_>, seg: usize) -> (Vec<usize>, Vec<usize>) {
    let ops: Vec<_> = (0..model.num_ops()).filter_map(|i| model.op(i)).collect();
    let produced: BTreeSet<usize> = ops
        .iter()
        .filter(|o| o.segment == seg)
        .map(|o| o.output)
        .collect();
    let mut inputs = Vec::new();
    let mut outputs = BTreeSet::new();
    for o in &ops {
        for k in 0..o.n_inputs {
            let t = model.op_input(o, k);
            if o.segment == seg && !produced.contains(&t) && !inputs.contains(&t) {
                inputs.push(t);
            }
            if o.segment != seg && produced.contains(&t) {
                outputs.insert(t);
            }
        }
    }
    for k in 0..model.num_outputs() {
        let t = model.output(k).expect("output").tensor;
        if produced.contains(&t) {
            outputs.insert(t);
        }
    }
    (inputs, outputs.into_iter().collect())
}

/// Regions as Vela numbers them for an Ethos-U55 (weights 0, scratch 1; without a fast
/// scratch Vela 5.2 names region 0 for it, with 0 bytes; with one, region 2).
pub struct Layout {
    pub fast_region: u8,
    /// Put the outputs in the fast scratch region (when it is separate).
    pub outputs_fast: bool,
    pub config: u32,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            fast_region: 0,
            outputs_fast: false,
            config: U55_128_CONFIG,
        }
    }
}

/// One stream of `seg` at (`e`, `w`): inputs then outputs packed 16-byte aligned in the
/// scratch (or the outputs in the fast scratch), a distinct command stream per stream.
pub fn stream(model: &Model<'_>, seg: usize, e: u8, w: u8, n: usize, l: &Layout) -> Stream {
    let mut widths = WidthConfig::narrowest(model);
    widths.set(0, e).expect("encoder");
    widths.set(seg, w).expect("segment");
    let (ins, outs) = segment_io(model, seg);
    let (mut scratch, mut fast) = (64u32, 0u32);
    let mut transfer = |t: usize, region: u8| {
        let info = model.tensor(t).expect("tensor");
        let (c, _, _) = model.tensor_quant(t, &widths);
        let bytes = (info.h * info.w * c) as u32;
        let at = if region == 1 { &mut scratch } else { &mut fast };
        let offset = *at;
        *at = (offset + bytes).div_ceil(16) * 16;
        Transfer {
            region,
            offset,
            arena: info.offset as u32,
            bytes,
        }
    };
    let inputs: Vec<Transfer> = ins.iter().map(|&t| transfer(t, 1)).collect();
    let out_region = if l.outputs_fast { l.fast_region } else { 1 };
    let outputs: Vec<Transfer> = outs.iter().map(|&t| transfer(t, out_region)).collect();
    let words: Vec<u32> = (0..4 + n as u32).map(|k| 0x4000_0000 | k).collect();
    Stream {
        segment: seg as u8,
        encoder_width: e,
        width: w,
        command_stream: payload(l.config, &words),
        weights: aligned(48 + 16 * n, |i| i as u8),
        weight_region: 0,
        scratch_region: 1,
        fast_scratch_region: l.fast_region,
        scratch_bytes: scratch + 32,
        fast_scratch_bytes: fast,
        inputs: inputs.leak(),
        outputs: outputs.leak(),
    }
}

/// Every stream of the model: the encoder at each width, each decoder at each width under
/// each encoder width; `keep` filters them.
pub fn table(model: &Model<'_>, l: &Layout, keep: impl Fn(usize, u8, u8) -> bool) -> Vec<Stream> {
    let mut v = Vec::new();
    for seg in 0..model.num_segments() {
        for e in 0..model.num_widths(0) as u8 {
            for w in 0..model.num_widths(seg) as u8 {
                if (seg == 0 && w != e) || !keep(seg, e, w) {
                    continue;
                }
                let n = v.len();
                v.push(stream(model, seg, e, w, n, l));
            }
        }
    }
    v
}

/// How the simulated NPU behaves when started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run the segment and finish after a few polls.
    Run,
    /// Scribble over its outputs and raise these error bits.
    Fail(u32),
    /// Never finish.
    Hang,
}

/// One start of the simulated NPU, as programmed.
#[derive(Debug, Clone)]
pub struct Start {
    /// The stream QBASE pointed at.
    pub stream: usize,
    pub qsize: u32,
}

pub struct Sim {
    pub model: Model<'static>,
    pub streams: &'static [Stream],
    pub id: u32,
    pub config: u32,
    pub mode: Mode,
    /// Where the test's scratch buffers are, and their lengths.
    pub scratch: (usize, usize),
    pub fast: (usize, usize),
    regs: Vec<u32>,
    reset_polls: u32,
    run_polls: u32,
    running: bool,
    pub writes: Vec<(usize, u32)>,
    pub starts: Vec<Start>,
    pub status_reads: u32,
}

impl Sim {
    pub fn new(
        model: Model<'static>,
        streams: &'static [Stream],
        scratch: &[u8],
        fast: &[u8],
    ) -> Self {
        Sim {
            model,
            streams,
            id: VELA_ID | 0x4000,
            config: U55_128_CONFIG,
            mode: Mode::Run,
            scratch: (scratch.as_ptr() as usize, scratch.len()),
            fast: (fast.as_ptr() as usize, fast.len()),
            regs: vec![0; regs::BLOCK_BYTES / 4],
            reset_polls: 0,
            run_polls: 0,
            running: false,
            writes: Vec::new(),
            starts: Vec::new(),
            status_reads: 0,
        }
    }

    fn reg(&self, offset: usize) -> u32 {
        self.regs[offset / 4]
    }

    fn pair(&self, offset: usize) -> u64 {
        u64::from(self.reg(offset)) | u64::from(self.reg(offset + 4)) << 32
    }

    /// The buffer region `r` of stream `s` must be at, from the test's buffers.
    fn buffer(&self, s: &Stream, r: u8) -> (usize, usize) {
        if r == s.scratch_region {
            self.scratch
        } else {
            self.fast
        }
    }

    /// The start command: check the programming, then run the stream.
    fn start(&mut self) {
        assert!(!self.running, "started while running");
        assert_eq!(
            self.reg(regs::RESET),
            regs::prot::PRIVILEGED,
            "reset to secure privileged"
        );
        assert_eq!(self.reg(regs::QCONFIG), 2, "QCONFIG");
        assert_eq!(self.reg(regs::REGIONCFG), 0x5553, "REGIONCFG");
        for k in 0..4 {
            assert_eq!(
                self.reg(regs::AXI_LIMIT0 + 4 * k),
                0x0f1f_0000,
                "AXI_LIMIT{k}"
            );
        }
        let qbase = self.pair(regs::QBASE);
        let stream = self
            .streams
            .iter()
            .position(|s| s.command_stream.as_ptr() as u64 + 32 == qbase)
            .unwrap_or_else(|| panic!("QBASE {qbase:#x} is no stream's NPU commands"));
        let s = self.streams[stream];
        let qsize = self.reg(regs::QSIZE);
        assert_eq!(
            qsize as usize,
            s.command_stream.len() - 32,
            "QSIZE: the command words"
        );
        let basep = |r: u8| self.pair(regs::BASEP0 + 8 * usize::from(r));
        assert_eq!(
            basep(s.weight_region),
            s.weights.as_ptr() as u64,
            "BASEP weights"
        );
        assert_eq!(
            basep(s.scratch_region),
            self.scratch.0 as u64,
            "BASEP scratch"
        );
        let fast = s.fast_scratch_bytes > 0 && s.fast_scratch_region != s.scratch_region;
        if fast {
            assert_eq!(
                basep(s.fast_scratch_region),
                self.fast.0 as u64,
                "BASEP fast scratch"
            );
        }
        let last = if fast {
            s.fast_scratch_region
        } else {
            s.scratch_region
        };
        assert_eq!(
            self.writes.iter().rev().nth(1).map(|w| w.0),
            Some(regs::BASEP0 + 8 * usize::from(last) + 4),
            "the base pointers are the last thing written before the start"
        );
        assert!(
            self.writes.iter().any(|&(o, v)| o == regs::CMD && v == 0),
            "Q-channels off before the run"
        );
        self.starts.push(Start { stream, qsize });
        self.running = true;
        self.run_polls = 0;
        match self.mode {
            Mode::Run => self.execute(&s),
            Mode::Fail(_) => {
                for t in s.outputs {
                    let out = vec![0x55u8; t.bytes as usize];
                    self.dma_write(&s, t, &out);
                }
            }
            Mode::Hang => {}
        }
    }

    /// The segment on the CPU: inputs from the scratch, ops in a shadow arena, outputs back.
    fn execute(&mut self, s: &Stream) {
        let m = self.model;
        let widths = widths_of(&m, s);
        let mut shadow = vec![0u8; m.arena_bytes()];
        for t in s.inputs {
            let data = self.dma_read(s, t);
            shadow[t.arena as usize..(t.arena + t.bytes) as usize].copy_from_slice(&data);
        }
        for i in 0..m.num_ops() {
            if m.op(i).expect("op").segment == usize::from(s.segment) {
                run_op(&m, &mut shadow, i, &widths).expect("segment op");
            }
        }
        for t in s.outputs {
            let data = shadow[t.arena as usize..(t.arena + t.bytes) as usize].to_vec();
            self.dma_write(s, t, &data);
        }
    }

    /// The address of transfer `t` in its region, checked to lie in the test's buffer.
    fn dma_address(&self, s: &Stream, t: &Transfer) -> usize {
        let base = self.pair(regs::BASEP0 + 8 * usize::from(t.region)) as usize;
        let (buf, len) = self.buffer(s, t.region);
        assert_eq!(base, buf, "region {} is not at its buffer", t.region);
        assert!(
            (t.offset + t.bytes) as usize <= len,
            "transfer past its buffer"
        );
        base + t.offset as usize
    }

    fn dma_read(&self, s: &Stream, t: &Transfer) -> Vec<u8> {
        let p = self.dma_address(s, t) as *const u8;
        // SAFETY: the simulated NPU's bus read. `p .. p + bytes` lies inside the test's scratch
        // buffer (checked above), which the driver lent the NPU through BASEP: between the start
        // command and its completed STATUS read (when this runs, inside the driver's register
        // access) the driver uses no reference to it. Bytes have no invalid values.
        unsafe { std::slice::from_raw_parts(p, t.bytes as usize).to_vec() }
    }

    fn dma_write(&self, s: &Stream, t: &Transfer, data: &[u8]) {
        let p = self.dma_address(s, t) as *mut u8;
        // SAFETY: the simulated NPU's bus write, into the same checked range of the scratch the
        // driver lent it (see `dma_read`); the driver took the address from `as_mut_ptr`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) }
    }

    fn status(&mut self) -> u32 {
        self.status_reads += 1;
        if self.reset_polls > 0 {
            self.reset_polls -= 1;
            return status::RESET_PENDING;
        }
        if !self.running {
            return 0;
        }
        self.run_polls += 1;
        match self.mode {
            Mode::Run if self.run_polls > 3 => status::IRQ_RAISED | status::CMD_END_REACHED,
            Mode::Fail(bits) if self.run_polls > 2 => status::IRQ_RAISED | bits,
            _ => status::RUNNING,
        }
    }
}

impl Registers for Sim {
    fn read(&mut self, offset: usize) -> u32 {
        match offset {
            regs::ID => self.id,
            regs::CONFIG => self.config,
            regs::STATUS => self.status(),
            regs::PROT => self.reg(regs::RESET) & 3,
            _ => self.reg(offset),
        }
    }

    fn write(&mut self, offset: usize, value: u32) {
        assert!(
            self.id != 0,
            "a register write to an absent NPU at {offset:#x}"
        );
        self.writes.push((offset, value));
        self.regs[offset / 4] = value;
        match offset {
            regs::RESET => {
                self.running = false;
                self.reset_polls = 2;
            }
            regs::CMD if value & regs::cmd::START != 0 => self.start(),
            regs::CMD if value & regs::cmd::CLEAR_IRQ != 0 => self.running = false,
            _ => {}
        }
    }
}
