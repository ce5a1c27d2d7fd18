//! Per-kernel speed of the kernel sets on the shapes that dominate the bundled models:
//! `reference`, `portable` and (x86-64) `x86_avx2` and, where the CPU has AVX-512 VNNI,
//! `x86_vnni`, each on the same data. Criterion reports
//! throughput in elements per second, where an element is one multiply-accumulate (so the
//! figure is MAC/s).
//!
//! `cargo bench -p edgeslim-tests --bench kernels` (add a filter such as `pointwise` to run
//! one group).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use edgeslim_runtime::kernels::{self, ChannelQuant, ConvGeometry, OutputStage, Shape};
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

criterion_group!(benches, conv, fully_connected);
criterion_main!(benches);
