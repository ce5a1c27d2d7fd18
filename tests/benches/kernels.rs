//! Per-kernel speed of the kernel sets on the shapes that dominate the bundled models:
//! `reference`, `portable` and (x86-64) `x86_avx2` and, where the CPU has AVX-512 VNNI,
//! `x86_vnni`, each on the same data. Criterion reports
//! throughput in elements per second, where an element is one multiply-accumulate (so the
//! figure is MAC/s).
//!
//! The newer ops (`new/...`: ConvTranspose, Concat, Pad, PRelu, Mul, Resize, Max, channel
//! gather) compare the reference with the portable variant, the one every target calls, on
//! the shapes of the conformance networks.
//!
//! `cargo bench -p edgeslim-tests --bench kernels` (add a filter such as `pointwise` or `new/`
//! to run some groups).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use edgeslim_runtime::kernels::{
    self, ChannelQuant, ConvGeometry, OutputStage, PadMode, Rescale, ResizeGeometry, Shape,
};
use edgeslim_tests::blob::random_i8;
use std::hint::black_box;
use std::time::Duration;

type ConvFn = fn(
    &ConvGeometry,
    &[i8],
    Shape,
    i32,
    &[i8],
    [usize; 4],
    ChannelQuant<'_>,
    OutputStage,
    &mut [i8],
    Shape,
);

type FcFn = fn(&[i8], usize, usize, i32, &[i8], usize, ChannelQuant<'_>, OutputStage, &mut [i8]);

fn conv_sets() -> Vec<(&'static str, ConvFn)> {
    let mut v: Vec<(&'static str, ConvFn)> = vec![
        ("reference", kernels::reference::conv2d),
        ("portable", kernels::portable::conv2d),
    ];
    #[cfg(target_arch = "x86_64")]
    v.push(("x86_avx2", kernels::x86_avx2::conv2d));
    #[cfg(target_arch = "x86_64")]
    if kernels::x86::vnni_available() {
        v.push(("x86_vnni", kernels::x86_vnni::conv2d));
    }
    v
}

fn fc_sets() -> Vec<(&'static str, FcFn)> {
    let mut v: Vec<(&'static str, FcFn)> = vec![
        ("reference", kernels::reference::fully_connected),
        ("portable", kernels::portable::fully_connected),
    ];
    #[cfg(target_arch = "x86_64")]
    v.push(("x86_avx2", kernels::x86_avx2::fully_connected));
    v
}

/// Per-channel `(bias, multiplier, shift)` bytes of realistic magnitude.
fn chan_bytes(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            let i = i as i32;
            [(i * 37) % 2000 - 1000, (1 << 30) + i * 7919, -7 - (i % 3)]
        })
        .flat_map(i32::to_le_bytes)
        .collect()
}

const STAGE: OutputStage = OutputStage {
    zero_point: -5,
    act_min: -128,
    act_max: 127,
};

/// One convolution case: `(name, h, w, cin, cout, k, stride, pad, depthwise)`.
type ConvCase = (
    &'static str,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    bool,
);

const CONV_CASES: &[ConvCase] = &[
    ("pointwise 64->64 25x5", 25, 5, 64, 64, 1, 1, 0, false),
    ("conv3x3 16->32 32x32", 32, 32, 16, 32, 3, 1, 1, false),
    ("conv3x3 1->16 64x64 s2", 64, 64, 1, 16, 3, 2, 1, false),
    ("depthwise3x3 64ch 25x5", 25, 5, 64, 64, 3, 1, 1, true),
    ("depthwise3x3 16ch 48x48", 48, 48, 16, 16, 3, 1, 1, true),
];

fn conv(c: &mut Criterion) {
    for &(name, h, w, cin, cout, k, stride, pad, dw) in CONV_CASES {
        let groups = if dw { cin } else { 1 };
        let i_full = if dw { 1 } else { cin };
        let oh = (h + 2 * pad - k) / stride + 1;
        let ow = (w + 2 * pad - k) / stride + 1;
        let x = random_i8(h * w * cin, 1);
        let wts = random_i8(cout * k * k * i_full, 2);
        let ch = chan_bytes(cout);
        let macs = (oh * ow * cout * k * k * i_full) as u64;
        let geo = ConvGeometry {
            stride: [stride; 2],
            pad: [pad; 2],
            dilation: [1; 2],
            groups,
        };
        let mut out = vec![0i8; oh * ow * cout];
        let mut g = c.benchmark_group(format!("conv/{name}"));
        g.throughput(Throughput::Elements(macs))
            .sample_size(20)
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500));
        let mut want = None;
        for (set, f) in conv_sets() {
            g.bench_function(BenchmarkId::from_parameter(set), |b| {
                b.iter(|| {
                    f(
                        &geo,
                        black_box(&x),
                        Shape { h, w, c: cin },
                        -3,
                        &wts,
                        [cout, k, k, i_full],
                        ChannelQuant::new(&ch),
                        STAGE,
                        &mut out,
                        Shape {
                            h: oh,
                            w: ow,
                            c: cout,
                        },
                    );
                    black_box(&out);
                })
            });
            // Every set gives the same bytes.
            assert_eq!(
                want.get_or_insert_with(|| out.clone()),
                &out,
                "{name}: {set}"
            );
        }
        g.finish();
    }
}

fn fully_connected(c: &mut Criterion) {
    let (n_in, n_out) = (1024, 12);
    let x = random_i8(n_in, 3);
    let wts = random_i8(n_in * n_out, 4);
    let ch = chan_bytes(n_out);
    let mut out = vec![0i8; n_out];
    let mut g = c.benchmark_group("fc/1024->12");
    g.throughput(Throughput::Elements((n_in * n_out) as u64))
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let mut want = None;
    for (set, f) in fc_sets() {
        g.bench_function(BenchmarkId::from_parameter(set), |b| {
            b.iter(|| {
                f(
                    black_box(&x),
                    1,
                    n_in,
                    -3,
                    &wts,
                    n_in,
                    ChannelQuant::new(&ch),
                    STAGE,
                    &mut out,
                );
                black_box(&out);
            })
        });
        assert_eq!(want.get_or_insert_with(|| out.clone()), &out, "fc: {set}");
    }
    g.finish();
}

/// The sets of the ops whose x86-64 sets re-export the portable variant: the reference against
/// the portable variant (what every target calls).
const ELEMENTWISE_SETS: [&str; 2] = ["reference", "portable"];

/// One benchmark group per case of the newer ops: `run(set, out)` runs set `set` once into
/// `out`; throughput in output values per second (or multiply-accumulates for ConvTranspose,
/// `elements`).
fn versus(
    c: &mut Criterion,
    name: &str,
    elements: u64,
    out_len: usize,
    run: impl Fn(&str, &mut [i8]),
) {
    let mut out = vec![0i8; out_len];
    let mut g = c.benchmark_group(name.to_string());
    g.throughput(Throughput::Elements(elements))
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let mut want = None;
    for set in ELEMENTWISE_SETS {
        g.bench_function(BenchmarkId::from_parameter(set), |b| {
            b.iter(|| {
                run(set, black_box(&mut out));
                black_box(&out);
            })
        });
        assert_eq!(
            want.get_or_insert_with(|| out.clone()),
            &out,
            "{name}: {set}"
        );
    }
    g.finish();
}

/// A requantizing copy of realistic size (scale ratio about 0.8).
const RESCALE: Rescale = Rescale {
    zero_point: 3,
    multiplier: 1_717_986_918,
    shift: 0,
};

/// The shapes of the conformance networks' ConvTranspose, Concat, Resize (U-Net), Pad and
/// PRelu (TCN KWS), squeeze-excitation Mul (MobileNetV3), and a Max and a channel slice.
fn newer_ops(c: &mut Criterion) {
    for &(name, (ih, iw, ic), oc, k, s, p) in &[
        (
            "convtranspose k2 s2 64->32 16x16",
            (16usize, 16usize, 64usize),
            32usize,
            2usize,
            2usize,
            0usize,
        ),
        (
            "convtranspose k4 s2 p1 16->8 32x32",
            (32, 32, 16),
            8,
            4,
            2,
            1,
        ),
    ] {
        let (oh, ow) = ((ih - 1) * s + k - 2 * p, (iw - 1) * s + k - 2 * p);
        let x = random_i8(ih * iw * ic, 5);
        let wts = random_i8(oc * k * k * ic, 6);
        let ch = chan_bytes(oc);
        let geo = ConvGeometry {
            stride: [s; 2],
            pad: [p; 2],
            dilation: [1; 2],
            groups: 1,
        };
        // Taps that reach the input, per output coordinate of one axis.
        let taps = |o: usize, n: usize| {
            (0..k)
                .filter(|&t| {
                    (o + p)
                        .checked_sub(t)
                        .is_some_and(|v| v % s == 0 && v / s < n)
                })
                .count()
        };
        let macs: usize = (0..oh).map(|y| taps(y, ih)).sum::<usize>()
            * (0..ow).map(|x| taps(x, iw)).sum::<usize>()
            * oc
            * ic;
        let (is, os) = (
            Shape {
                h: ih,
                w: iw,
                c: ic,
            },
            Shape {
                h: oh,
                w: ow,
                c: oc,
            },
        );
        versus(
            c,
            &format!("new/{name}"),
            macs as u64,
            os.len(),
            |set, out| {
                let f = if set == "reference" {
                    kernels::reference::conv_transpose
                } else {
                    kernels::portable::conv_transpose
                };
                f(
                    &geo,
                    &x,
                    is,
                    -3,
                    &wts,
                    [oc, k, k, ic],
                    ChannelQuant::new(&ch),
                    STAGE,
                    out,
                    os,
                )
            },
        );
    }
    {
        let (a, b) = (random_i8(32 * 32 * 32, 7), random_i8(32 * 32 * 32, 8));
        let id = Rescale {
            zero_point: -5,
            multiplier: 1 << 30,
            shift: 1,
        };
        versus(c, "new/concat 32+32ch 32x32", 65536, 65536, |set, out| {
            let ins = [(&a[..], 32, RESCALE), (&b[..], 32, id)];
            if set == "reference" {
                kernels::reference::concat(&ins, 1024, STAGE, out)
            } else {
                kernels::portable::concat(&ins, 1024, STAGE, out)
            }
        });
    }
    {
        let is = Shape {
            h: 49,
            w: 10,
            c: 64,
        };
        let os = Shape {
            h: 53,
            w: 10,
            c: 64,
        };
        let x = random_i8(is.len(), 9);
        versus(
            c,
            "new/pad 49x10x64 top 4",
            os.len() as u64,
            os.len(),
            |set, out| {
                let f = if set == "reference" {
                    kernels::reference::pad
                } else {
                    kernels::portable::pad
                };
                f(
                    &x,
                    is,
                    [4, 0],
                    PadMode::Constant,
                    -5,
                    RESCALE,
                    STAGE,
                    out,
                    os,
                )
            },
        );
        let alpha = random_i8(64, 10);
        let ch = chan_bytes(64);
        versus(
            c,
            "new/prelu 49x10x64",
            is.len() as u64,
            is.len(),
            |set, out| {
                let f = if set == "reference" {
                    kernels::reference::prelu
                } else {
                    kernels::portable::prelu
                };
                f(
                    &x,
                    64,
                    -3,
                    (1 << 30, 0),
                    &alpha,
                    ChannelQuant::new(&ch),
                    STAGE,
                    out,
                )
            },
        );
    }
    {
        let x = random_i8(24 * 24 * 96, 11);
        let y = random_i8(96, 12);
        let r = Rescale {
            zero_point: -128,
            multiplier: 1 << 30,
            shift: -7,
        };
        versus(
            c,
            "new/mul per-channel 24x24x96",
            55296,
            55296,
            |set, out| {
                let f = if set == "reference" {
                    kernels::reference::mul
                } else {
                    kernels::portable::mul
                };
                f(&x, 4, &y, Some(96), r, STAGE, out)
            },
        );
    }
    for (name, linear, (ih, ic)) in [
        (
            "new/resize bilinear 32x32x32 -> 64x64",
            true,
            (32usize, 32usize),
        ),
        ("new/resize nearest 16x16x16 -> 32x32", false, (16, 16)),
    ] {
        let is = Shape {
            h: ih,
            w: ih,
            c: ic,
        };
        let os = Shape {
            h: 2 * ih,
            w: 2 * ih,
            c: ic,
        };
        let x = random_i8(is.len(), 13);
        let geo = ResizeGeometry {
            linear,
            coord: 0,
            nearest: 0,
            scale: [[2, 1]; 2],
        };
        let r = Rescale {
            shift: if linear { -20 } else { 0 },
            ..RESCALE
        };
        versus(c, name, os.len() as u64, os.len(), |set, out| {
            let f = if set == "reference" {
                kernels::reference::resize
            } else {
                kernels::portable::resize
            };
            f(&geo, &x, is, r, STAGE, out, os)
        });
    }
    {
        let (a, b) = (random_i8(48 * 48 * 16, 14), random_i8(48 * 48 * 16, 15));
        versus(c, "new/max 48x48x16", 36864, 36864, |set, out| {
            let f = if set == "reference" {
                kernels::reference::minmax
            } else {
                kernels::portable::minmax
            };
            f(false, (&a, RESCALE), (&b, RESCALE), STAGE, out)
        });
        let x = random_i8(32 * 32 * 64, 16);
        versus(
            c,
            "new/gather channels 64 -> 32 (step 2) 32x32",
            32768,
            32768,
            |set, out| {
                let f = if set == "reference" {
                    kernels::reference::gather_channels
                } else {
                    kernels::portable::gather_channels
                };
                f(&x, 64, 0, 2, RESCALE, STAGE, out, 32)
            },
        );
    }
}

criterion_group!(benches, conv, fully_connected, newer_ops);
criterion_main!(benches);
