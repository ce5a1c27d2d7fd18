//! The interpreter: runs a [`Model`] at a chosen width configuration and task set, with all
//! activations in one caller-given arena.

use crate::error::{Error, Section, invalid};
use crate::format::OpKind;
use crate::kernels::{self, OutputStage, Shape, active, as_i8, as_i8_mut};
use crate::model::{Entry, Model, OpInfo};
use crate::ops::{self, Invoke, Io};
use crate::width::{TaskMask, WidthConfig};

/// The input of a run: float (quantized at entry with the model's input parameters) or int8
/// already quantized. NHWC, `h * w * c` elements.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Float input.
    F32(&'a [f32]),
    /// int8 input in the model's input quantization.
    I8(&'a [i8]),
}

/// Per-op hooks, e.g. for profiling. Every method defaults to nothing, so `()` observes
/// nothing at zero cost.
pub trait Observer {
    /// Called before op `index` runs.
    fn op_start(&mut self, _index: usize, _op: &OpInfo) {}
    /// Called after op `index` ran.
    fn op_end(&mut self, _index: usize, _op: &OpInfo) {}
    /// Called after [`op_end`](Self::op_end) with the op's data: its first input and its
    /// output at the active widths, and its width entry. For tools that re-run an op elsewhere
    /// (e.g. a reference kernel on the same input); an observer that does not implement it
    /// costs nothing.
    fn op_data(&mut self, _index: usize, _op: &OpInfo, _data: &OpData<'_, '_>) {}
}

/// What [`Observer::op_data`] sees of an op that just ran. A Reshape op (a view, nothing
/// runs) reports no data.
#[derive(Debug, Clone, Copy)]
pub struct OpData<'x, 'm> {
    /// The first input, NHWC at the active width (`input_shape`).
    pub input: &'x [i8],
    /// Its shape at the active width (for a fully connected op: the positions as `h * w`).
    pub input_shape: Shape,
    /// The output the op wrote, NHWC at the active width.
    pub output: &'x [i8],
    /// Its shape at the active width.
    pub output_shape: Shape,
    /// The op's width entry for this run (zero points, activation clamp, channel table).
    pub entry: Entry<'m>,
}

impl Observer for () {}

/// Runs a model over a static arena. Creating it checks the arena size; running it allocates
/// nothing and plans nothing: switching widths or tasks between runs costs only the checks of
/// the new configuration.
///
/// ```
/// # fn demo(blob: &[u8]) -> Result<(), edgeslim_runtime::Error> {
/// use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};
/// let model = Model::parse(blob)?;
/// let mut arena = [0u8; 4096];
/// let mut interp = Interpreter::new(&model, &mut arena)?;
/// let widths = WidthConfig::narrowest(&model);
/// let input = [0.0f32; 64];
/// let outputs = interp.run(Input::F32(&input), &widths, TaskMask::all(&model))?;
/// let first = outputs.get(0)?;
/// let mut probs = [0.0f32; 10];
/// first.dequantize_into(&mut probs)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Interpreter<'m, 'a> {
    model: Model<'m>,
    arena: &'a mut [u8],
}

impl<'m, 'a> Interpreter<'m, 'a> {
    /// An interpreter over `model` using `arena` for every activation.
    pub fn new(model: &Model<'m>, arena: &'a mut [u8]) -> Result<Self, Error> {
        if arena.len() < model.arena_bytes() {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_bytes(),
                given: arena.len(),
            });
        }
        Ok(Interpreter {
            model: *model,
            arena,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// Run the encoder stages at their widths and the selected tasks' decoders at theirs.
    pub fn run(
        &mut self,
        input: Input<'_>,
        widths: &WidthConfig,
        tasks: TaskMask,
    ) -> Result<Outputs<'_>, Error> {
        self.run_observed(input, widths, tasks, &mut ())
    }

    /// [`run`](Self::run), handing whole segments to an [`Accelerator`] first: each segment
    /// that runs is offered once, before its first op; the CPU runs every op of the segments
    /// it declines, exactly as [`run`](Self::run) does.
    pub fn run_accelerated<A: Accelerator>(
        &mut self,
        input: Input<'_>,
        widths: &WidthConfig,
        tasks: TaskMask,
        accelerator: &mut A,
    ) -> Result<Outputs<'_>, Error> {
        self.run_inner(input, widths, tasks, &mut (), accelerator)
    }

    /// [`run`](Self::run) with per-op hooks.
    pub fn run_observed<O: Observer>(
        &mut self,
        input: Input<'_>,
        widths: &WidthConfig,
        tasks: TaskMask,
        observer: &mut O,
    ) -> Result<Outputs<'_>, Error> {
        self.run_inner(input, widths, tasks, observer, &mut CpuOnly)
    }

    fn run_inner<O: Observer, A: Accelerator>(
        &mut self,
        input: Input<'_>,
        widths: &WidthConfig,
        tasks: TaskMask,
        observer: &mut O,
        accelerator: &mut A,
    ) -> Result<Outputs<'_>, Error> {
        let m = self.model;
        widths.validate(&m)?;
        tasks.validate(&m)?;
        let inp = m.input();
        let n = inp.bytes();
        let dst = self
            .arena
            .get_mut(inp.offset..inp.offset + n)
            .ok_or(invalid(
                Section::Tensors,
                m.input_index() as u32,
                "offset",
                "outside the arena",
            ))?;
        match input {
            Input::F32(x) => {
                if x.len() != n {
                    return Err(Error::InputLength {
                        expected: n,
                        given: x.len(),
                    });
                }
                let (scale, zp) = m.input_quant();
                active::quantize(x, scale, zp, as_i8_mut(dst));
            }
            Input::I8(x) => {
                if x.len() != n {
                    return Err(Error::InputLength {
                        expected: n,
                        given: x.len(),
                    });
                }
                for (d, &v) in dst.iter_mut().zip(x) {
                    *d = v as u8;
                }
            }
        }
        let mut segments: u32 = m.encoder_mask();
        for t in 0..m.num_tasks() {
            if tasks.contains(t) {
                segments |= 1 << m.task_segment(t);
            }
        }
        let (mut offered, mut accelerated) = (0u32, 0u32);
        for i in 0..m.num_ops() {
            let op = m
                .op(i)
                .ok_or(invalid(Section::Ops, i as u32, "kind", "unreadable op"))?;
            let bit = 1u32 << op.segment;
            if segments & bit == 0 {
                continue;
            }
            if A::OFFERS && offered & bit == 0 {
                offered |= bit;
                if accelerator.run_segment(&m, op.segment, widths, self.arena)? {
                    accelerated |= bit;
                }
            }
            if accelerated & bit != 0 {
                continue;
            }
            observer.op_start(i, &op);
            exec(&m, self.arena, i, &op, widths, observer)?;
        }
        Ok(Outputs {
            model: m,
            arena: self.arena,
            widths: *widths,
            tasks,
        })
    }
}

/// A device the interpreter can hand a whole segment to (an NPU driver, say), with the CPU as
/// the fallback for whatever it declines.
///
/// [`Interpreter::run_accelerated`] offers each segment that runs once, in the model's order,
/// before its first op. Accepting means computing, into `arena` at the planned offsets and the
/// active widths, every tensor of the segment that later ops or the outputs read; the CPU then
/// skips the segment's ops. Declining (`Ok(false)`) leaves the segment to the CPU, bit-exact as
/// without an accelerator. An implementation may also run part of a segment itself and the
/// rest on the CPU, op by op, with [`run_op`].
pub trait Accelerator {
    /// Whether [`run_segment`](Self::run_segment) can accept anything: `false` compiles the
    /// offers out (the CPU-only interpreter).
    const OFFERS: bool = true;

    /// Run `segment` of `model` at `widths` on the device, or return `Ok(false)`.
    fn run_segment(
        &mut self,
        model: &Model<'_>,
        segment: usize,
        widths: &WidthConfig,
        arena: &mut [u8],
    ) -> Result<bool, Error>;
}

/// No accelerator: every segment runs on the CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuOnly;

impl Accelerator for CpuOnly {
    const OFFERS: bool = false;

    fn run_segment(
        &mut self,
        _: &Model<'_>,
        _: usize,
        _: &WidthConfig,
        _: &mut [u8],
    ) -> Result<bool, Error> {
        Ok(false)
    }
}

/// Run op `index` of `model` on the CPU (the interpreter's own kernels) in `arena` at
/// `widths`: the fallback an [`Accelerator`] uses for the ops of a segment it does not run
/// itself. `arena` must be at least the model's arena size; the op's inputs must already be in
/// it.
pub fn run_op(
    model: &Model<'_>,
    arena: &mut [u8],
    index: usize,
    widths: &WidthConfig,
) -> Result<(), Error> {
    if arena.len() < model.arena_bytes() {
        return Err(Error::ArenaTooSmall {
            needed: model.arena_bytes(),
            given: arena.len(),
        });
    }
    widths.validate(model)?;
    let op = model
        .op(index)
        .ok_or(invalid(Section::Ops, index as u32, "kind", "no such op"))?;
    exec(model, arena, index, &op, widths, &mut ())
}

fn stage(e: &Entry<'_>) -> OutputStage {
    let (act_min, act_max) = e.act();
    OutputStage {
        zero_point: e.out_zp(),
        act_min,
        act_max,
    }
}

/// Run op `i`: cut its output and first input out of the arena at the active widths and hand
/// them to the op's invoke.
/// `observer.op_end` (and `op_data`) are called here, right after the op's invoke.
fn exec<O: Observer>(
    m: &Model<'_>,
    arena: &mut [u8],
    i: usize,
    op: &OpInfo,
    widths: &WidthConfig,
    observer: &mut O,
) -> Result<(), Error> {
    if op.kind == OpKind::Reshape {
        // A view: the output tensor shares the input's bytes.
        observer.op_end(i, op);
        return Ok(());
    }
    let en = m.entry(op, m.key(op, widths));
    let out_rec = m.tensor_rec(op.output);
    let in_rec = m.tensor_rec(m.op_input(op, 0));
    let out_shape = Shape {
        h: out_rec.h,
        w: out_rec.w,
        c: en.out_ch(),
    };
    let in_shape = Shape {
        h: in_rec.h,
        w: in_rec.w,
        c: en.in_ch(),
    };
    let out_len = out_shape.len();
    let out_end = out_rec.offset + out_len;
    if out_end > arena.len() {
        return Err(invalid(
            Section::Ops,
            i as u32,
            "output",
            "tensor reference",
        ));
    }
    let (head, rest) = arena.split_at_mut(out_rec.offset);
    let (out, tail) = rest.split_at_mut(out_len);
    let io = Io {
        head,
        tail,
        out_end,
    };
    let x = io.input(in_rec.offset, in_shape.len(), i)?;
    let ctx = Invoke {
        model: m,
        index: i,
        op,
        en,
        stage: stage(&en),
        x,
        io,
        in_rec,
        out_rec,
        in_shape,
        out_shape,
    };
    (ops::registration(op.kind).invoke)(&ctx, as_i8_mut(out))?;
    observer.op_end(i, op);
    observer.op_data(
        i,
        op,
        &OpData {
            input: x,
            input_shape: in_shape,
            output: as_i8(out),
            output_shape: out_shape,
            entry: en,
        },
    );
    Ok(())
}

/// One output of a finished run: int8 data in the arena with its quantization.
#[derive(Debug, Clone, Copy)]
pub struct OutputView<'r> {
    /// Output name.
    pub name: &'r str,
    /// Task index.
    pub task: usize,
    /// int8 values, NHWC at the active width.
    pub data: &'r [i8],
    /// Shape at the active width.
    pub shape: Shape,
    /// Quantization scale.
    pub scale: f32,
    /// Quantization zero point.
    pub zero_point: i32,
}

impl OutputView<'_> {
    /// Dequantize into `out`; returns the number of values written.
    pub fn dequantize_into(&self, out: &mut [f32]) -> Result<usize, Error> {
        if out.len() < self.data.len() {
            return Err(Error::BufferTooSmall {
                needed: self.data.len(),
                given: out.len(),
            });
        }
        kernels::active::dequantize(self.data, self.scale, self.zero_point, out);
        Ok(self.data.len())
    }

    /// Index of the largest value (first on ties): the class of a classifier.
    pub fn argmax(&self) -> usize {
        let mut best = 0;
        for (i, &v) in self.data.iter().enumerate() {
            if v > self.data[best] {
                best = i;
            }
        }
        best
    }
}

/// The outputs of a run, borrowed from the interpreter's arena until the next run.
#[derive(Debug)]
pub struct Outputs<'r> {
    model: Model<'r>,
    arena: &'r [u8],
    widths: WidthConfig,
    tasks: TaskMask,
}

impl<'r> Outputs<'r> {
    /// Output `index` (model order), if its task ran.
    pub fn get(&self, index: usize) -> Result<OutputView<'r>, Error> {
        let na = Error::OutputNotAvailable {
            index: index as u32,
        };
        let o = self.model.output(index).ok_or(na)?;
        if !self.tasks.contains(o.task) {
            return Err(na);
        }
        let t = self.model.tensor(o.tensor).ok_or(na)?;
        let (c, scale, zero_point) = self.model.tensor_quant(o.tensor, &self.widths);
        let shape = Shape { h: t.h, w: t.w, c };
        let data = self.arena.get(t.offset..t.offset + shape.len()).ok_or(na)?;
        Ok(OutputView {
            name: o.name,
            task: o.task,
            data: as_i8(data),
            shape,
            scale,
            zero_point,
        })
    }

    /// The output named `name`.
    pub fn by_name(&self, name: &str) -> Result<OutputView<'r>, Error> {
        (0..self.model.num_outputs())
            .find(|&i| self.model.output(i).is_some_and(|o| o.name == name))
            .ok_or(Error::UnknownName)
            .and_then(|i| self.get(i))
    }

    /// The first output of task `task`.
    pub fn task(&self, task: usize) -> Result<OutputView<'r>, Error> {
        let t = self
            .model
            .task(task)
            .ok_or(Error::OutputNotAvailable { index: task as u32 })?;
        self.get(t.first_output)
    }

    /// Every output of the tasks that ran.
    pub fn iter(&self) -> impl Iterator<Item = OutputView<'r>> + '_ {
        (0..self.model.num_outputs()).filter_map(|i| self.get(i).ok())
    }
}
