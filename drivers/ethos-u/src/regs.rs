//! The Ethos-U55 registers the driver uses (offsets from the NPU's base, bit fields), the
//! [`Registers`] trait through which it reaches them, and [`Mmio`], the trait on real hardware.
//!
//! Offsets and fields follow the register map Vela ships (`ethos_u55_regs.py`, architecture
//! 1.0.6) and Arm's ethos-u-core-driver: 32-bit registers; `QBASE` and the eight `BASEP`
//! region pointers are 64-bit pairs (low word first), of which an Ethos-U55 uses the low word.

/// `ID`: architecture and product revision.
pub const ID: usize = 0x000;
/// `STATUS`: state, IRQ and error bits.
pub const STATUS: usize = 0x004;
/// `CMD`: start, clear IRQ, clock and power Q-channel enables.
pub const CMD: usize = 0x008;
/// `RESET`: soft reset, with the security and privilege level the NPU takes afterwards.
pub const RESET: usize = 0x00C;
/// `QBASE` (low word; the high word follows): the command stream's address.
pub const QBASE: usize = 0x010;
/// `QREAD`: how far the NPU has read the command stream (bytes), for fault reports.
pub const QREAD: usize = 0x018;
/// `QCONFIG`: the AXI configuration command-stream fetches use.
pub const QCONFIG: usize = 0x01C;
/// `QSIZE`: the command stream's length in bytes.
pub const QSIZE: usize = 0x020;
/// `PROT`: the security and privilege level the NPU is in.
pub const PROT: usize = 0x024;
/// `CONFIG`: MACs per cycle, shared-buffer size, command-stream version, product.
pub const CONFIG: usize = 0x028;
/// `REGIONCFG`: the AXI configuration each base-pointer region uses (2 bits a region).
pub const REGIONCFG: usize = 0x03C;
/// `AXI_LIMIT0` (`AXI_LIMIT1..3` follow, 4 bytes apart).
pub const AXI_LIMIT0: usize = 0x040;
/// `BASEP0` (low word; region `r`'s pair is at `BASEP0 + 8 * r`).
pub const BASEP0: usize = 0x080;
/// Base-pointer regions of an Ethos-U55.
pub const REGIONS: u8 = 8;
/// Bytes of the register block.
pub const BLOCK_BYTES: usize = 0x1000;

/// `STATUS` bits.
pub mod status {
    /// The NPU is running.
    pub const RUNNING: u32 = 1 << 0;
    /// The NPU raised its interrupt (end of the command stream, or an error).
    pub const IRQ_RAISED: u32 = 1 << 1;
    /// An AXI bus error.
    pub const BUS_ERROR: u32 = 1 << 2;
    /// A soft reset is still in progress.
    pub const RESET_PENDING: u32 = 1 << 3;
    /// The command stream could not be parsed.
    pub const CMD_PARSE_ERROR: u32 = 1 << 4;
    /// The NPU reached the end of the command stream.
    pub const CMD_END_REACHED: u32 = 1 << 5;
    /// The weight decoder faulted.
    pub const WD_FAULT: u32 = 1 << 7;
    /// An ECC fault in the shared buffer.
    pub const ECC_FAULT: u32 = 1 << 8;
    /// Every bit that means the run failed.
    pub const ERRORS: u32 = BUS_ERROR | CMD_PARSE_ERROR | WD_FAULT | ECC_FAULT;
}

/// `CMD` bits.
pub mod cmd {
    /// Start reading the command stream at `QBASE`.
    pub const START: u32 = 1 << 0;
    /// Clear the raised interrupt.
    pub const CLEAR_IRQ: u32 = 1 << 1;
    /// Let the clock Q-channel gate the NPU's clock when idle.
    pub const CLOCK_Q_ENABLE: u32 = 1 << 2;
    /// Let the power Q-channel power the NPU down when idle.
    pub const POWER_Q_ENABLE: u32 = 1 << 3;
}

/// `RESET` and `PROT` bits: the privilege and security level.
pub mod prot {
    /// Privileged (`CPL`): 1 privileged, 0 user.
    pub const PRIVILEGED: u32 = 1 << 0;
    /// Non-secure (`CSL`): 1 non-secure, 0 secure.
    pub const NON_SECURE: u32 = 1 << 1;
}

/// The fields of `ID` and `CONFIG` the driver compares with a command stream's header.
pub mod id {
    /// Architecture major revision (`ID` bits 28..32).
    pub const fn arch_major(id: u32) -> u32 {
        id >> 28
    }
    /// Architecture minor revision (`ID` bits 20..28).
    pub const fn arch_minor(id: u32) -> u32 {
        (id >> 20) & 0xFF
    }
    /// log2 of the MACs per cycle (`CONFIG` bits 0..4): 5 for an Ethos-U55-32 .. 8 for -256.
    pub const fn macs_log2(config: u32) -> u32 {
        config & 0xF
    }
    /// Command-stream version (`CONFIG` bits 4..8).
    pub const fn cmd_stream_version(config: u32) -> u32 {
        (config >> 4) & 0xF
    }
    /// Shared-buffer size in KiB (`CONFIG` bits 8..16).
    pub const fn shram_kib(config: u32) -> u32 {
        (config >> 8) & 0xFF
    }
    /// Product (`CONFIG` bits 28..32): 0 Ethos-U55, 1 Ethos-U65.
    pub const fn product(config: u32) -> u32 {
        config >> 28
    }
}

/// How the NPU reaches memory: which AXI configuration the command stream and each region use
/// and the AXI limits. [`Default`] is Arm's driver's default for the Ethos-U55
/// (`ethosu_config_u55.h`: command stream on configuration 2, region 0 (weights) on 3, region 1
/// (scratch) on 0, the others on 1; 32 outstanding reads and 16 writes on every port). A board
/// whose memory system needs other settings (its integration manual says) passes its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxiConfig {
    /// `QCONFIG`.
    pub qconfig: u32,
    /// `REGIONCFG`.
    pub regioncfg: u32,
    /// `AXI_LIMIT0..3`.
    pub limits: [u32; 4],
}

impl AxiConfig {
    /// An `AXI_LIMITn` word: max beats (0: 64 bytes), memory type, outstanding reads and
    /// writes (at least 1 each).
    pub const fn limit(max_beats: u32, mem_type: u32, reads: u32, writes: u32) -> u32 {
        (max_beats & 0x3)
            | ((mem_type & 0xF) << 4)
            | ((reads.saturating_sub(1) & 0xFF) << 16)
            | ((writes.saturating_sub(1) & 0xFF) << 24)
    }
}

impl Default for AxiConfig {
    fn default() -> Self {
        let limit = AxiConfig::limit(0, 0, 32, 16);
        AxiConfig {
            qconfig: 2,
            // Region 0 on 3, region 1 on 0, regions 2..7 on 1.
            regioncfg: 3
                | (0b01 << 4)
                | (0b01 << 6)
                | (0b01 << 8)
                | (0b01 << 10)
                | (0b01 << 12)
                | (0b01 << 14),
            limits: [limit; 4],
        }
    }
}

/// Access to one Ethos-U's registers and to what the NPU sees of memory: the one place the
/// driver meets hardware. [`Mmio`] implements it with volatile accesses at the NPU's base
/// address; host tests implement it with a simulated NPU.
///
/// `offset` is a byte offset into the 4 KiB register block (the constants of this module).
pub trait Registers {
    /// Read the register at `offset`.
    fn read(&mut self, offset: usize) -> u32;

    /// Write `value` to the register at `offset`.
    fn write(&mut self, offset: usize, value: u32);

    /// The address the NPU's AXI masters use for CPU address `addr`. The same on Corstone-300
    /// (the default); an SoC that puts the CPU's tightly coupled memories at another address
    /// on the system bus (Alif Ensemble's local-to-global mapping, say) translates here.
    fn npu_address(&self, addr: usize) -> u64 {
        addr as u64
    }

    /// Make the CPU's writes to `len` bytes at `addr` visible to the NPU before it starts:
    /// clean the data cache over them, when the CPU has one enabled. Nothing by default (no
    /// cache, or a write-through one).
    fn clean_dcache(&mut self, addr: usize, len: usize) {
        let _ = (addr, len);
    }

    /// Drop the CPU's cached copy of `len` bytes at `addr` after the NPU wrote them: invalidate
    /// the data cache over them, when the CPU has one enabled. Nothing by default.
    fn invalidate_dcache(&mut self, addr: usize, len: usize) {
        let _ = (addr, len);
    }

    /// Order the CPU's memory writes before the register write that starts the NPU.
    fn barrier(&mut self) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }
}

/// The registers of an Ethos-U at a fixed address: volatile 32-bit reads and writes.
#[derive(Debug)]
pub struct Mmio {
    base: usize,
}

impl Mmio {
    /// The register block at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be 4-byte aligned and every 32-bit read and write in `base..base + 0x1000`
    /// must be harmless to the program: the registers of an Ethos-U that nothing else drives
    /// (one `Mmio` per NPU), or a window that reads as zero and ignores writes (what QEMU's
    /// `mps3-an547` has at the Corstone-300 NPU's address). No Rust object may live there. An
    /// address where a read faults (an NPU absent from the bus) must not be given: the probe
    /// reads `ID` and `CONFIG`.
    pub const unsafe fn new(base: usize) -> Self {
        Mmio { base }
    }

    /// The base address.
    pub const fn base(&self) -> usize {
        self.base
    }

    /// The register's address: inside the 4 KiB block and word-aligned, whatever `offset` is.
    fn address(&self, offset: usize) -> usize {
        self.base.wrapping_add(offset & (BLOCK_BYTES - 4))
    }
}

impl Registers for Mmio {
    fn read(&mut self, offset: usize) -> u32 {
        let p = self.address(offset) as *const u32;
        // SAFETY: `p` is a word-aligned address inside the register block, where `new`'s
        // caller guaranteed reads are harmless and no Rust object lives; volatile, so the
        // read happens exactly as written.
        unsafe { core::ptr::read_volatile(p) }
    }

    fn write(&mut self, offset: usize, value: u32) {
        let p = self.address(offset) as *mut u32;
        // SAFETY: as for `read`: an aligned address inside the register block, where writes
        // touch no Rust object and `new`'s caller guaranteed them harmless.
        unsafe { core::ptr::write_volatile(p, value) }
    }
}
