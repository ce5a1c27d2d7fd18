//! The firmware's application logic, apart from any board: which budget level runs (chosen with
//! a button or a serial command), a timer around each inference, and the log line a deployment
//! prints. It is written against the embedded-hal 1.0 traits (`InputPin` for the button,
//! `embedded_hal_nb::serial::Read` for the command line) and a [`Ticks`] clock, so the same code
//! runs on every board (the QEMU boards' `deploy` program, a real board's HAL) and is tested on
//! the host with `embedded-hal-mock` (`app/tests/app.rs`).
//!
//! Commands, one per line (`\n` or `\r`), case-insensitive, surrounding spaces ignored:
//!
//! | command | effect |
//! |---|---|
//! | `level <n>` or `l <n>` | run budget level `n` (0 is the first level of the bundle) |
//! | `next` or `n` | the next level, wrapping after the last (also what a button press does) |
//! | `prev` or `p` | the previous level, wrapping before the first |
//! | `status` or `s` or `?` | report the current level, change nothing |
//!
//! A line longer than [`MAX_LINE`] bytes, an unknown command, a malformed number or a level the
//! bundle does not have is rejected with a [`CommandError`] naming it; the level stays.
#![no_std]

use core::fmt;

use embedded_hal::digital::InputPin;
use embedded_hal_nb::nb;
use embedded_hal_nb::serial::Read;

/// The longest command line accepted, in bytes.
pub const MAX_LINE: usize = 32;

/// Serial bytes read by one [`App::poll`] at most, so that a flood of input cannot hold off
/// inference indefinitely.
pub const MAX_BYTES_PER_POLL: usize = 64;

/// A parsed command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Run this level.
    Level(usize),
    /// The next level, wrapping.
    Next,
    /// The previous level, wrapping.
    Prev,
    /// Report the current level.
    Status,
}

/// Why a command line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// Not one of the commands.
    Unknown,
    /// `level` without a number, or with something that is not a decimal number.
    BadNumber,
    /// The line had more than [`MAX_LINE`] bytes.
    LineTooLong,
    /// The bundle has no such level.
    NoSuchLevel {
        /// The level asked for.
        level: usize,
        /// How many levels the bundle has.
        levels: usize,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown => f.write_str("unknown command (level <n>, next, prev, status)"),
            CommandError::BadNumber => f.write_str("level needs a decimal number: level <n>"),
            CommandError::LineTooLong => write!(f, "line longer than {MAX_LINE} bytes"),
            CommandError::NoSuchLevel { level, levels } => {
                write!(
                    f,
                    "no level {level}: the bundle has levels 0 to {}",
                    levels - 1
                )
            }
        }
    }
}

/// Parse one command line (without its line ending).
pub fn parse_command(line: &str) -> Result<Command, CommandError> {
    let mut words = line.split_ascii_whitespace();
    let Some(word) = words.next() else {
        return Err(CommandError::Unknown);
    };
    let is = |a: &str, b: &str| word.eq_ignore_ascii_case(a) || word.eq_ignore_ascii_case(b);
    let cmd = if is("level", "l") {
        let n = words.next().ok_or(CommandError::BadNumber)?;
        if !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CommandError::BadNumber);
        }
        Command::Level(n.parse().map_err(|_| CommandError::BadNumber)?)
    } else if is("next", "n") {
        Command::Next
    } else if is("prev", "p") {
        Command::Prev
    } else if is("status", "s") || word == "?" {
        Command::Status
    } else {
        return Err(CommandError::Unknown);
    };
    if words.next().is_some() {
        return Err(CommandError::Unknown);
    }
    Ok(cmd)
}

/// Collects serial bytes into lines and parses each complete line.
#[derive(Debug, Default)]
pub struct LineReader {
    buf: heapless::Vec<u8, MAX_LINE>,
    overflow: bool,
}

impl LineReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take one byte. At the end of a non-empty line, the parsed command (or why it was
    /// rejected); `None` otherwise. Empty lines (e.g. the `\n` of a `\r\n`) are ignored.
    pub fn push(&mut self, byte: u8) -> Option<Result<Command, CommandError>> {
        if byte != b'\n' && byte != b'\r' {
            if self.buf.push(byte).is_err() {
                self.overflow = true;
            }
            return None;
        }
        let overflow = core::mem::take(&mut self.overflow);
        let result = if overflow {
            Some(Err(CommandError::LineTooLong))
        } else if self.buf.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(
                core::str::from_utf8(&self.buf)
                    .map_err(|_| CommandError::Unknown)
                    .and_then(parse_command),
            )
        };
        self.buf.clear();
        result
    }
}

/// A push button on an input pin: one event per press (the released-to-pressed edge), however
/// long it is held. Debouncing is the caller's polling interval: a press shorter than it may be
/// missed, bounces within it are not seen.
pub struct Button<P> {
    pin: P,
    active_low: bool,
    was_pressed: bool,
}

impl<P: InputPin> Button<P> {
    /// A button that pulls the pin low when pressed (the usual wiring, with a pull-up).
    pub fn active_low(pin: P) -> Self {
        Button {
            pin,
            active_low: true,
            was_pressed: false,
        }
    }

    /// A button that drives the pin high when pressed.
    pub fn active_high(pin: P) -> Self {
        Button {
            pin,
            active_low: false,
            was_pressed: false,
        }
    }

    /// Read the pin: `true` when the button went down since the last poll.
    pub fn poll(&mut self) -> Result<bool, P::Error> {
        let pressed = if self.active_low {
            self.pin.is_low()?
        } else {
            self.pin.is_high()?
        };
        let edge = pressed && !self.was_pressed;
        self.was_pressed = pressed;
        Ok(edge)
    }

    /// The pin back.
    pub fn release(self) -> P {
        self.pin
    }
}

/// The current budget level among `levels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selector {
    level: usize,
    levels: usize,
}

impl Selector {
    /// Level `start` of `levels`; `None` when there are no levels or `start` is not one.
    pub fn new(levels: usize, start: usize) -> Option<Self> {
        (start < levels).then_some(Selector {
            level: start,
            levels,
        })
    }

    /// The current level.
    pub fn level(&self) -> usize {
        self.level
    }

    /// How many levels there are.
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// Apply a command: the level afterwards, or why the command was refused (the level
    /// unchanged).
    pub fn apply(&mut self, cmd: Command) -> Result<usize, CommandError> {
        self.level = match cmd {
            Command::Level(level) if level < self.levels => level,
            Command::Level(level) => {
                return Err(CommandError::NoSuchLevel {
                    level,
                    levels: self.levels,
                });
            }
            Command::Next => (self.level + 1) % self.levels,
            Command::Prev => (self.level + self.levels - 1) % self.levels,
            Command::Status => self.level,
        };
        Ok(self.level)
    }
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The button.
    Button,
    /// A serial command.
    Serial,
}

/// What [`App::poll`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<BE, SE> {
    /// The level is now `level` (it may be the same level, e.g. `level 1` while at 1).
    Level {
        /// The level now.
        level: usize,
        /// What asked for it.
        source: Source,
    },
    /// `status` was asked: the current level.
    Status(usize),
    /// A command line was refused; the level is unchanged.
    Rejected(CommandError),
    /// Reading the button failed.
    ButtonError(BE),
    /// Reading the serial port failed (a framing or overrun error, say); the bytes of the line
    /// so far are kept.
    SerialError(SE),
}

/// The application's inputs: a button and a serial command line over one [`Selector`].
pub struct App<B, S> {
    button: Option<Button<B>>,
    serial: S,
    reader: LineReader,
    selector: Selector,
}

impl<B: InputPin, S: Read<u8>> App<B, S> {
    /// The application over `levels` levels, starting at `start`; `None` as for
    /// [`Selector::new`]. A board without a button passes `None::<Button<NoButton>>`.
    pub fn new(button: Option<Button<B>>, serial: S, levels: usize, start: usize) -> Option<Self> {
        Some(App {
            button,
            serial,
            reader: LineReader::new(),
            selector: Selector::new(levels, start)?,
        })
    }

    /// The current level.
    pub fn level(&self) -> usize {
        self.selector.level()
    }

    /// Change the level from the program itself (a schedule, a battery monitor), as a serial
    /// command would.
    pub fn apply(&mut self, cmd: Command) -> Result<usize, CommandError> {
        self.selector.apply(cmd)
    }

    /// Poll the button once and read the serial bytes that are waiting (at most
    /// [`MAX_BYTES_PER_POLL`]); `on_event` sees each event in order. Never blocks.
    pub fn poll(&mut self, mut on_event: impl FnMut(Event<B::Error, S::Error>)) {
        match self.button.as_mut().map(Button::poll).unwrap_or(Ok(false)) {
            Ok(true) => {
                // `Next` always succeeds: there is at least one level.
                if let Ok(level) = self.selector.apply(Command::Next) {
                    on_event(Event::Level {
                        level,
                        source: Source::Button,
                    });
                }
            }
            Ok(false) => {}
            Err(e) => on_event(Event::ButtonError(e)),
        }
        for _ in 0..MAX_BYTES_PER_POLL {
            let byte = match self.serial.read() {
                Ok(b) => b,
                Err(nb::Error::WouldBlock) => break,
                Err(nb::Error::Other(e)) => {
                    on_event(Event::SerialError(e));
                    break;
                }
            };
            let Some(parsed) = self.reader.push(byte) else {
                continue;
            };
            let event = match parsed.and_then(|cmd| Ok((cmd, self.selector.apply(cmd)?))) {
                Ok((Command::Status, level)) => Event::Status(level),
                Ok((_, level)) => Event::Level {
                    level,
                    source: Source::Serial,
                },
                Err(e) => Event::Rejected(e),
            };
            on_event(event);
        }
    }

    /// The button and the serial port back.
    pub fn release(self) -> (Option<Button<B>>, S) {
        (self.button, self.serial)
    }
}

/// A free-running tick counter (SysTick extended to 64 bits, a hardware timer, a cycle
/// counter).
pub trait Ticks {
    /// Ticks since some fixed start; never decreases.
    fn now(&mut self) -> u64;
    /// Ticks per second.
    fn hz(&self) -> u32;
}

/// Run `f` and count the ticks it took.
pub fn timed<C: Ticks + ?Sized, R>(clock: &mut C, f: impl FnOnce() -> R) -> (R, u64) {
    let t0 = clock.now();
    let r = f();
    (r, clock.now().saturating_sub(t0))
}

/// `ticks` of a `hz` clock in microseconds, rounded down (0 for a 0 Hz clock).
pub fn micros(ticks: u64, hz: u32) -> u64 {
    if hz == 0 {
        return 0;
    }
    let us = u128::from(ticks) * 1_000_000 / u128::from(hz);
    u64::try_from(us).unwrap_or(u64::MAX)
}

/// One inference as a deployment logs it:
/// `infer level <l> budget_us <b> time_us <t> ticks <n> within_budget <yes|no>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inference {
    /// The level that ran.
    pub level: usize,
    /// Its latency budget in microseconds (from the bundle).
    pub budget_us: u32,
    /// Ticks the inference took.
    pub ticks: u64,
    /// The clock's rate.
    pub hz: u32,
}

impl Inference {
    /// The inference's time in microseconds.
    pub fn time_us(&self) -> u64 {
        micros(self.ticks, self.hz)
    }

    /// Whether it took no longer than the level's budget.
    pub fn within_budget(&self) -> bool {
        self.time_us() <= u64::from(self.budget_us)
    }
}

impl fmt::Display for Inference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "infer level {} budget_us {} time_us {} ticks {} within_budget {}",
            self.level,
            self.budget_us,
            self.time_us(),
            self.ticks,
            if self.within_budget() { "yes" } else { "no" }
        )
    }
}

/// The pin type of a board without a button (`None::<Button<NoButton>>`): it reads low, the
/// released state of an active-high button.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoButton;

impl embedded_hal::digital::ErrorType for NoButton {
    type Error = core::convert::Infallible;
}

impl InputPin for NoButton {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(false)
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// A serial port for a board without one: nothing ever arrives.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSerial;

impl embedded_hal_nb::serial::ErrorType for NoSerial {
    type Error = core::convert::Infallible;
}

impl Read<u8> for NoSerial {
    fn read(&mut self) -> nb::Result<u8, Self::Error> {
        Err(nb::Error::WouldBlock)
    }
}
