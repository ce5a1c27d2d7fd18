//! The application logic against embedded-hal-mock's pins and serial ports: every transaction
//! a test expects must happen (`done()`), and none other.

use edgeslim_app::{
    App, Button, Command, CommandError, Event, Inference, LineReader, MAX_BYTES_PER_POLL, MAX_LINE,
    NoButton, NoSerial, Selector, Source, Ticks, micros, parse_command, timed,
};
use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTx};
use embedded_hal_mock::eh1::serial::{Mock as SerialMock, Transaction as SerialTx};
use embedded_hal_nb::nb;
use embedded_hal_nb::serial::ErrorKind;

type Ev = Event<embedded_hal_mock::eh1::MockError, ErrorKind>;

fn poll_all(app: &mut App<PinMock, SerialMock<u8>>) -> Vec<Ev> {
    let mut events = Vec::new();
    app.poll(|e| events.push(e));
    events
}

#[test]
fn commands_parse_in_every_spelling() {
    for (line, want) in [
        ("level 2", Command::Level(2)),
        ("  LEVEL   10 ", Command::Level(10)),
        ("l 0", Command::Level(0)),
        ("next", Command::Next),
        ("N", Command::Next),
        ("prev", Command::Prev),
        ("p", Command::Prev),
        ("status", Command::Status),
        ("s", Command::Status),
        ("?", Command::Status),
    ] {
        assert_eq!(parse_command(line), Ok(want), "{line:?}");
    }
    for (line, want) in [
        ("", CommandError::Unknown),
        ("jump", CommandError::Unknown),
        ("next 2", CommandError::Unknown),
        ("level", CommandError::BadNumber),
        ("level -1", CommandError::BadNumber),
        ("level +1", CommandError::BadNumber),
        ("level two", CommandError::BadNumber),
        ("level 99999999999999999999999", CommandError::BadNumber),
    ] {
        assert_eq!(parse_command(line), Err(want), "{line:?}");
    }
}

#[test]
fn line_reader_splits_lines_and_refuses_long_ones() {
    let mut r = LineReader::new();
    let mut got = Vec::new();
    for &b in b"level 1\r\nnext\n\n   \nbogus\r" {
        if let Some(x) = r.push(b) {
            got.push(x);
        }
    }
    assert_eq!(
        got,
        [
            Ok(Command::Level(1)),
            Ok(Command::Next),
            Err(CommandError::Unknown)
        ]
    );
    // One byte over the limit is refused as a whole line, and the next line is read afresh.
    let long = [b'x'; MAX_LINE + 1];
    assert!(long.iter().all(|&b| r.push(b).is_none()));
    assert_eq!(r.push(b'\n'), Some(Err(CommandError::LineTooLong)));
    let at_limit = format!("level {}", "0".repeat(MAX_LINE - 6));
    assert_eq!(at_limit.len(), MAX_LINE);
    assert!(at_limit.bytes().all(|b| r.push(b).is_none()));
    assert_eq!(r.push(b'\n'), Some(Ok(Command::Level(0))));
    // Bytes that are not UTF-8 are an unknown command, not a panic.
    for b in [0xff, 0xfe] {
        assert!(r.push(b).is_none());
    }
    assert_eq!(r.push(b'\n'), Some(Err(CommandError::Unknown)));
}

#[test]
fn selector_wraps_and_refuses_missing_levels() {
    assert!(Selector::new(0, 0).is_none());
    assert!(Selector::new(3, 3).is_none());
    let mut s = Selector::new(3, 2).expect("level 2 of 3");
    assert_eq!(s.apply(Command::Next), Ok(0));
    assert_eq!(s.apply(Command::Prev), Ok(2));
    assert_eq!(s.apply(Command::Level(1)), Ok(1));
    assert_eq!(
        s.apply(Command::Level(3)),
        Err(CommandError::NoSuchLevel {
            level: 3,
            levels: 3
        })
    );
    assert_eq!(s.level(), 1);
    assert_eq!(s.apply(Command::Status), Ok(1));
    let e = CommandError::NoSuchLevel {
        level: 7,
        levels: 3,
    };
    assert_eq!(e.to_string(), "no level 7: the bundle has levels 0 to 2");
}

#[test]
fn button_gives_one_event_per_press() {
    // Active low: High is released, Low pressed. Held for three polls, released, pressed again.
    let reads = [
        State::High,
        State::Low,
        State::Low,
        State::Low,
        State::High,
        State::Low,
    ];
    let tx: Vec<PinTx> = reads.iter().map(|&s| PinTx::get(s)).collect();
    let mut b = Button::active_low(PinMock::new(&tx));
    let edges: Vec<bool> = (0..reads.len())
        .map(|_| b.poll().expect("mock pin"))
        .collect();
    assert_eq!(edges, [false, true, false, false, false, true]);
    b.release().done();

    let tx = [PinTx::get(State::Low), PinTx::get(State::High)];
    let mut b = Button::active_high(PinMock::new(&tx));
    assert!(!b.poll().expect("mock pin"));
    assert!(b.poll().expect("mock pin"));
    b.release().done();
}

#[test]
fn app_follows_button_and_serial_in_order() {
    let pin = PinMock::new(&[
        PinTx::get(State::High),
        PinTx::get(State::Low),
        PinTx::get(State::Low),
    ]);
    let serial = SerialMock::new(&[
        // Poll 1: a command that arrives in two polls, the first half now.
        SerialTx::read_many(b"lev"),
        SerialTx::read_error(nb::Error::WouldBlock),
        // Poll 2 (button pressed: level 1 -> 2): the rest, a refused level, a status.
        SerialTx::read_many(b"el 0\nlevel 5\n?\n"),
        SerialTx::read_error(nb::Error::WouldBlock),
        // Poll 3: a framing error, then nothing.
        SerialTx::read_error(nb::Error::Other(ErrorKind::FrameFormat)),
    ]);
    let mut app = App::new(Some(Button::active_low(pin)), serial, 3, 1).expect("3 levels");
    assert_eq!(poll_all(&mut app), []);
    assert_eq!(app.level(), 1);
    assert_eq!(
        poll_all(&mut app),
        [
            Event::Level {
                level: 2,
                source: Source::Button
            },
            Event::Level {
                level: 0,
                source: Source::Serial
            },
            Event::Rejected(CommandError::NoSuchLevel {
                level: 5,
                levels: 3
            }),
            Event::Status(0),
        ]
    );
    assert_eq!(
        poll_all(&mut app),
        [Event::SerialError(ErrorKind::FrameFormat)]
    );
    assert_eq!(app.level(), 0);
    let (button, mut serial) = app.release();
    button.expect("a button").release().done();
    serial.done();
}

#[test]
fn app_reads_a_bounded_number_of_bytes_per_poll() {
    // A flood of spaces: one poll reads MAX_BYTES_PER_POLL of them and returns.
    let flood = vec![b' '; MAX_BYTES_PER_POLL];
    let serial = SerialMock::new(&[SerialTx::read_many(flood)]);
    let mut app = App::new(None::<Button<NoButton>>, serial, 2, 0).expect("2 levels");
    let mut events = 0;
    app.poll(|_| events += 1);
    assert_eq!(events, 0);
    let (_, mut serial) = app.release();
    serial.done();

    // Without inputs nothing ever happens; the program itself can still change the level.
    let mut app = App::new(None::<Button<NoButton>>, NoSerial, 4, 3).expect("4 levels");
    for _ in 0..3 {
        app.poll(|e| panic!("unexpected event {e:?}"));
    }
    assert_eq!(app.level(), 3);
    assert_eq!(app.apply(Command::Next), Ok(0));
    assert_eq!(
        app.apply(Command::Level(4)),
        Err(CommandError::NoSuchLevel {
            level: 4,
            levels: 4
        })
    );
    assert_eq!(app.level(), 0);
}

struct FakeClock {
    t: u64,
    step: u64,
}

impl Ticks for FakeClock {
    fn now(&mut self) -> u64 {
        self.t += self.step;
        self.t
    }
    fn hz(&self) -> u32 {
        25_000_000
    }
}

#[test]
fn inference_timing_and_log_line() {
    let mut clock = FakeClock { t: 100, step: 50 };
    let (r, ticks) = timed(&mut clock, || 7);
    assert_eq!((r, ticks), (7, 50));
    assert_eq!(micros(25_000_000, 25_000_000), 1_000_000);
    assert_eq!(micros(39, 25_000_000), 1);
    assert_eq!(micros(u64::MAX, 1), u64::MAX);
    assert_eq!(micros(5, 0), 0);

    let run = Inference {
        level: 2,
        budget_us: 1000,
        ticks: 25_000,
        hz: clock.hz(),
    };
    assert_eq!(run.time_us(), 1000);
    assert!(run.within_budget());
    assert_eq!(
        run.to_string(),
        "infer level 2 budget_us 1000 time_us 1000 ticks 25000 within_budget yes"
    );
    let over = Inference {
        ticks: 25_025,
        ..run
    };
    assert_eq!(over.time_us(), 1001);
    assert!(!over.within_budget());
    assert!(over.to_string().ends_with("within_budget no"));
}
