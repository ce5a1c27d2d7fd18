//! The driver: [`EthosU`] runs a segment's Vela command stream on the NPU when it has one for
//! the run's widths, and declines otherwise.

use edgeslim_runtime::{Accelerator, Error, Model, WidthConfig};

use crate::payload::{self, Payload};
use crate::regs::{self, AxiConfig, Registers, cmd, id, prot, status};
use crate::{Stream, Transfer};

/// How the driver sets the NPU up and how long it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The security level the NPU takes at each soft reset: secure when the CPU drives it from
    /// the secure state (as the firmware here, which boots secure on Corstone-300), non-secure
    /// from a non-secure image. The NPU's bus accesses are made at this level.
    pub secure: bool,
    /// The privilege level it takes: privileged unless the driver runs in unprivileged code.
    pub privileged: bool,
    /// `STATUS` reads before a run that has not finished counts as timed out (the NPU is then
    /// reset and the segment declined).
    pub poll_limit: u32,
    /// `STATUS` reads before a soft reset that has not finished counts as failed (Arm's
    /// driver waits 100,000).
    pub reset_poll_limit: u32,
    /// The AXI set-up written after every soft reset.
    pub axi: AxiConfig,
}

impl Default for Config {
    /// Secure and privileged, up to 10 million polls per run, Arm's AXI defaults.
    fn default() -> Self {
        Config {
            secure: true,
            privileged: true,
            poll_limit: 10_000_000,
            reset_poll_limit: 100_000,
            axi: AxiConfig::default(),
        }
    }
}

/// The NPU found at start-up: its `ID` and `CONFIG` registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardware {
    /// `ID`.
    pub id: u32,
    /// `CONFIG`.
    pub config: u32,
}

impl Hardware {
    /// MACs per cycle (32 for an Ethos-U55-32 .. 256).
    pub fn macs(&self) -> u32 {
        1 << id::macs_log2(self.config).min(15)
    }

    /// Whether it runs a stream Vela compiled for `config` and `id` (the check of Arm's
    /// driver): the same MACs, shared buffer, command-stream version and product, the same
    /// architecture major revision and at least its minor one.
    pub fn runs(&self, config: u32, stream_id: u32) -> bool {
        let fields = |c: u32| {
            (
                id::macs_log2(c),
                id::shram_kib(c),
                id::cmd_stream_version(c),
                id::product(c),
            )
        };
        fields(self.config) == fields(config)
            && id::arch_major(self.id) == id::arch_major(stream_id)
            && id::arch_minor(self.id) >= id::arch_minor(stream_id)
    }
}

/// What the driver did with the segments offered to it since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Segments offered.
    pub offered: u32,
    /// Run on the NPU.
    pub accepted: u32,
    /// Declined: no NPU was found at start-up.
    pub no_npu: u32,
    /// Declined: no stream for the segment at the run's widths.
    pub no_stream: u32,
    /// Declined: the stream was compiled for another NPU configuration.
    pub mismatched: u32,
    /// Declined: the NPU reported an error, or its soft reset failed.
    pub faults: u32,
    /// Declined: the NPU had not finished within the poll limit.
    pub timeouts: u32,
    /// `STATUS` of the last fault or timeout (0: none).
    pub last_status: u32,
    /// `QREAD` then: how far the NPU had read its command stream, in bytes.
    pub last_qread: u32,
}

impl Stats {
    /// Segments declined (the CPU ran them).
    pub fn declined(&self) -> u32 {
        self.offered.wrapping_sub(self.accepted)
    }
}

/// Why a started run did not finish well.
enum Failure {
    /// Error bits, an unfinished stream, or a soft reset that failed.
    Fault(u32),
    /// No completion within the poll limit.
    Timeout(u32),
}

/// An Ethos-U driving the runtime's segments, with the CPU as the fallback. Generic over the
/// register access ([`Mmio`](crate::Mmio) on hardware, a simulation in tests).
///
/// The NPU reaches three buffers: the stream's weights in flash (its weight region), `scratch`
/// (its scratch region: the segment's inputs, outputs and intermediate tensors at the offsets
/// Vela planned) and `fast_scratch` (its fast scratch region, used only when Vela put it in a
/// region of its own). Both scratch buffers must be 16-byte aligned and at least the largest
/// `scratch_bytes` / `fast_scratch_bytes` of the streams (the bundle's `NPU_SCRATCH_BYTES` and
/// `NPU_FAST_SCRATCH_BYTES`); [`check`](Self::check) verifies the whole table against them.
#[derive(Debug)]
pub struct EthosU<'a, R: Registers> {
    regs: R,
    streams: &'a [Stream],
    scratch: &'a mut [u8],
    fast_scratch: &'a mut [u8],
    config: Config,
    hardware: Option<Hardware>,
    stats: Stats,
}

/// Whether stream `s` uses a fast scratch region of its own. Vela names a fast scratch region
/// even when it has none (Vela 5.2 for an Ethos-U55: region 0, the weights', with 0 bytes);
/// its base pointer is then left alone.
fn fast_in_use(s: &Stream) -> bool {
    s.fast_scratch_bytes > 0 && s.fast_scratch_region != s.scratch_region
}

fn bad(index: usize, field: &'static str, reason: &'static str) -> Error {
    Error::Accelerator {
        index: index as u32,
        field,
        reason,
    }
}

impl<'a, R: Registers> EthosU<'a, R> {
    /// A driver over `regs` for the streams `streams`. Probes the NPU by reading `ID` and
    /// `CONFIG` (nothing is written until a segment runs): an Ethos-U55 or -U65 answers with
    /// architecture major revision 1; an absent one that reads as zero is taken as no NPU,
    /// and every segment is then declined.
    pub fn new(
        mut regs: R,
        streams: &'a [Stream],
        scratch: &'a mut [u8],
        fast_scratch: &'a mut [u8],
        config: Config,
    ) -> Self {
        let hw = Hardware {
            id: regs.read(regs::ID),
            config: regs.read(regs::CONFIG),
        };
        let present = id::arch_major(hw.id) == 1 && id::product(hw.config) <= 1;
        EthosU {
            regs,
            streams,
            scratch,
            fast_scratch,
            config,
            hardware: present.then_some(hw),
            stats: Stats::default(),
        }
    }

    /// The NPU found at start-up, if any.
    pub fn hardware(&self) -> Option<Hardware> {
        self.hardware
    }

    /// What happened to the segments offered so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The register access (a test's simulated NPU, say).
    pub fn registers(&self) -> &R {
        &self.regs
    }

    /// The streams.
    pub fn streams(&self) -> &'a [Stream] {
        self.streams
    }

    /// The index of the stream of `segment` at width `width`, compiled with the segment it
    /// reads (its `in_segment`: the encoder, or the stage before) at `encoder_width` (its own
    /// width for a segment that keys on no other).
    pub fn find(&self, segment: usize, encoder_width: u8, width: u8) -> Option<usize> {
        self.streams.iter().position(|s| {
            usize::from(s.segment) == segment
                && s.encoder_width == encoder_width
                && s.width == width
        })
    }

    /// The stream for `segment` of `model` under `widths`, if the table has one.
    pub fn stream_for(
        &self,
        model: &Model<'_>,
        segment: usize,
        widths: &WidthConfig,
    ) -> Option<usize> {
        let own = widths.get(segment)?;
        let read = match model.segment_in(segment) {
            Some(i) => widths.get(i)?,
            None => own,
        };
        self.find(segment, read, own)
    }

    /// Check every stream against an arena of `arena_bytes` and the scratch buffers, whether
    /// or not an NPU is present: what a firmware calls once at start-up to fail early on a
    /// bundle that does not fit. Running a segment checks its stream again.
    pub fn check(&self, arena_bytes: usize) -> Result<(), Error> {
        for i in 0..self.streams.len() {
            self.validate(i, arena_bytes)?;
        }
        Ok(())
    }

    /// The declared size of `region` of stream `s`, or `None` when the region is neither of
    /// its scratch regions in use. The scratch region wins when both are the same.
    fn region_bytes(&self, s: &Stream, region: u8) -> Option<u32> {
        if region == s.scratch_region {
            Some(s.scratch_bytes)
        } else if fast_in_use(s) && region == s.fast_scratch_region {
            Some(s.fast_scratch_bytes)
        } else {
            None
        }
    }

    fn region_mut(&mut self, s: &Stream, region: u8) -> &mut [u8] {
        if region == s.scratch_region {
            self.scratch
        } else {
            self.fast_scratch
        }
    }

    /// Whether `addr` is 16-byte aligned as the NPU sees it.
    fn aligned(&self, addr: usize) -> bool {
        self.regs.npu_address(addr).is_multiple_of(16)
    }

    /// Everything about stream `index` that could make the driver touch memory it must not:
    /// its payload, alignment, regions, buffer sizes and transfers.
    fn validate(&self, index: usize, arena_bytes: usize) -> Result<Payload, Error> {
        let s = self
            .streams
            .get(index)
            .ok_or(bad(index, "index", "no such stream"))?;
        let p = payload::parse(s.command_stream).map_err(|r| bad(index, "command_stream", r))?;
        let commands = (s.command_stream.as_ptr() as usize).wrapping_add(p.offset);
        if !self.aligned(commands) {
            return Err(bad(
                index,
                "command_stream",
                "NPU commands not 16-byte aligned",
            ));
        }
        if !s.weights.is_empty() && !self.aligned(s.weights.as_ptr() as usize) {
            return Err(bad(index, "weights", "not 16-byte aligned"));
        }
        for r in [s.weight_region, s.scratch_region, s.fast_scratch_region] {
            if r >= regs::REGIONS {
                return Err(bad(index, "region", "past the NPU's eight base pointers"));
            }
        }
        if s.weight_region == s.scratch_region
            || (fast_in_use(s) && s.weight_region == s.fast_scratch_region)
        {
            return Err(bad(index, "weight_region", "shared with a scratch region"));
        }
        if s.scratch_bytes as usize > self.scratch.len() {
            return Err(bad(
                index,
                "scratch_bytes",
                "larger than the scratch buffer",
            ));
        }
        if s.scratch_bytes > 0 && !self.aligned(self.scratch.as_ptr() as usize) {
            return Err(bad(index, "scratch", "buffer not 16-byte aligned"));
        }
        if fast_in_use(s) {
            if s.fast_scratch_bytes as usize > self.fast_scratch.len() {
                return Err(bad(
                    index,
                    "fast_scratch_bytes",
                    "larger than the fast scratch buffer",
                ));
            }
            if !self.aligned(self.fast_scratch.as_ptr() as usize) {
                return Err(bad(index, "fast_scratch", "buffer not 16-byte aligned"));
            }
        }
        for (field, list) in [("inputs", s.inputs), ("outputs", s.outputs)] {
            for t in list {
                let size = self.region_bytes(s, t.region).ok_or(bad(
                    index,
                    field,
                    "region is neither scratch region",
                ))?;
                let end = |at: u32| u64::from(at) + u64::from(t.bytes);
                if end(t.offset) > u64::from(size) {
                    return Err(bad(index, field, "outside its NPU region"));
                }
                if end(t.arena) > arena_bytes as u64 {
                    return Err(bad(index, field, "outside the arena"));
                }
            }
        }
        Ok(p)
    }

    /// Soft reset into the configured security and privilege level, then the AXI set-up.
    /// `Err(STATUS)` when the reset does not finish or the NPU is not at the level asked for.
    fn soft_reset(&mut self) -> Result<(), u32> {
        let level = if self.config.privileged {
            prot::PRIVILEGED
        } else {
            0
        } | if self.config.secure {
            0
        } else {
            prot::NON_SECURE
        };
        self.regs.write(regs::RESET, level);
        let mut polls = 0;
        loop {
            let st = self.regs.read(regs::STATUS);
            if st & status::RESET_PENDING == 0 {
                break;
            }
            polls += 1;
            if polls >= self.config.reset_poll_limit {
                return Err(st);
            }
        }
        if self.regs.read(regs::PROT) & (prot::PRIVILEGED | prot::NON_SECURE) != level {
            return Err(self.regs.read(regs::STATUS));
        }
        let axi = self.config.axi;
        self.regs.write(regs::QCONFIG, axi.qconfig);
        self.regs.write(regs::REGIONCFG, axi.regioncfg);
        for (k, &l) in axi.limits.iter().enumerate() {
            self.regs.write(regs::AXI_LIMIT0 + 4 * k, l);
        }
        Ok(())
    }

    fn write_pair(&mut self, offset: usize, addr: usize) {
        let a = self.regs.npu_address(addr);
        self.regs.write(offset, a as u32);
        self.regs.write(offset + 4, (a >> 32) as u32);
    }

    /// Program and start stream `s` (its NPU commands at `p`), wait for it.
    fn execute(&mut self, s: &Stream, p: &Payload) -> Result<(), Failure> {
        self.soft_reset().map_err(Failure::Fault)?;
        // Q-channels off while running: the NPU is neither clock-gated nor powered down under
        // its own command stream (Arm's driver requests power for the inference the same way).
        self.regs.write(regs::CMD, 0);
        let commands = (s.command_stream.as_ptr() as usize).wrapping_add(p.offset);
        // The NPU writes the scratch buffers: their addresses come from mutable pointers.
        let scratch = self.scratch.as_mut_ptr() as usize;
        let fast = self.fast_scratch.as_mut_ptr() as usize;
        let separate_fast = fast_in_use(s);
        self.regs.clean_dcache(commands, p.bytes);
        self.regs
            .clean_dcache(s.weights.as_ptr() as usize, s.weights.len());
        self.regs.clean_dcache(scratch, s.scratch_bytes as usize);
        if separate_fast {
            self.regs.clean_dcache(fast, s.fast_scratch_bytes as usize);
        }
        self.regs.barrier();
        self.write_pair(regs::QBASE, commands);
        self.regs.write(regs::QSIZE, p.bytes as u32);
        self.write_pair(
            regs::BASEP0 + 8 * usize::from(s.weight_region),
            s.weights.as_ptr() as usize,
        );
        self.write_pair(regs::BASEP0 + 8 * usize::from(s.scratch_region), scratch);
        if separate_fast {
            self.write_pair(regs::BASEP0 + 8 * usize::from(s.fast_scratch_region), fast);
        }
        self.regs.barrier();
        self.regs.write(regs::CMD, cmd::START);

        let mut polls = 0;
        let st = loop {
            let st = self.regs.read(regs::STATUS);
            if st & (status::IRQ_RAISED | status::ERRORS) != 0 {
                break st;
            }
            polls += 1;
            if polls >= self.config.poll_limit {
                return Err(Failure::Timeout(st));
            }
        };
        self.regs.write(regs::CMD, cmd::CLEAR_IRQ);
        if st & status::ERRORS != 0 || st & status::CMD_END_REACHED == 0 {
            return Err(Failure::Fault(st));
        }
        self.regs
            .invalidate_dcache(scratch, s.scratch_bytes as usize);
        if separate_fast {
            self.regs
                .invalidate_dcache(fast, s.fast_scratch_bytes as usize);
        }
        Ok(())
    }

    /// Copy the transfers between the arena and the regions: in (arena to NPU) or out.
    fn copy(&mut self, s: &Stream, list: &[Transfer], arena: &mut [u8], inward: bool) {
        for t in list {
            let (o, a, n) = (t.offset as usize, t.arena as usize, t.bytes as usize);
            let region = self.region_mut(s, t.region);
            // `validate` checked both ranges; `get` keeps this free of panics regardless.
            let r = o.checked_add(n).and_then(|e| region.get_mut(o..e));
            let x = a.checked_add(n).and_then(|e| arena.get_mut(a..e));
            if let (Some(r), Some(x)) = (r, x) {
                if inward {
                    r.copy_from_slice(x);
                } else {
                    x.copy_from_slice(r);
                }
            }
        }
    }

    /// Stop whatever the NPU does (a timed-out or faulted run), leave it gated when idle.
    fn recover(&mut self, st: u32) {
        self.stats.last_status = st;
        self.stats.last_qread = self.regs.read(regs::QREAD);
        // A failed reset leaves nothing more to try here; the segment is declined either way.
        let _ = self.soft_reset();
        self.idle();
    }

    fn idle(&mut self) {
        self.regs
            .write(regs::CMD, cmd::CLOCK_Q_ENABLE | cmd::POWER_Q_ENABLE);
    }
}

impl<R: Registers> Accelerator for EthosU<'_, R> {
    fn run_segment(
        &mut self,
        model: &Model<'_>,
        segment: usize,
        widths: &WidthConfig,
        arena: &mut [u8],
    ) -> Result<bool, Error> {
        self.stats.offered = self.stats.offered.wrapping_add(1);
        let Some(hw) = self.hardware else {
            self.stats.no_npu = self.stats.no_npu.wrapping_add(1);
            return Ok(false);
        };
        let Some(index) = self.stream_for(model, segment, widths) else {
            self.stats.no_stream = self.stats.no_stream.wrapping_add(1);
            return Ok(false);
        };
        let Some(&s) = self.streams.get(index) else {
            return Ok(false);
        };
        let p = self.validate(index, arena.len().min(model.arena_bytes()))?;
        if !hw.runs(p.config, p.id) {
            self.stats.mismatched = self.stats.mismatched.wrapping_add(1);
            return Ok(false);
        }
        self.copy(&s, s.inputs, arena, true);
        match self.execute(&s, &p) {
            Ok(()) => {
                self.copy(&s, s.outputs, arena, false);
                self.idle();
                self.stats.accepted = self.stats.accepted.wrapping_add(1);
                Ok(true)
            }
            Err(Failure::Fault(st)) => {
                self.stats.faults = self.stats.faults.wrapping_add(1);
                self.recover(st);
                Ok(false)
            }
            Err(Failure::Timeout(st)) => {
                self.stats.timeouts = self.stats.timeouts.wrapping_add(1);
                self.recover(st);
                Ok(false)
            }
        }
    }
}
