//! Plots of the search space: every configuration as (latency, weighted score), the Pareto front,
//! the budget and the chosen configuration. `.svg` or `.png`, chosen by the file extension.
//!
//! Points that fall in the same 2x2-pixel cell are drawn once, so a space of 262,144 configurations gives
//! a file of bounded size. PNG text is rendered with a system sans-serif font found through
//! fontconfig, loaded at run time (no build-time dependency); without it PNG output is an
//! [`Error::Plot`] and SVG still works.

use std::collections::HashSet;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::search::{Choice, Objective, Problem, SearchReport};

/// What to draw besides the configurations and the front.
#[derive(Debug, Clone)]
pub struct PlotSpec<'a> {
    /// The budget (a vertical line), microseconds.
    pub budget_us: f64,
    /// The highlighted configuration.
    pub chosen: &'a Choice,
    /// Its legend label, e.g. `exact`.
    pub chosen_label: &'a str,
    /// A second highlighted configuration (e.g. the paper-mode answer) and its label.
    pub other: Option<(&'a str, &'a Choice)>,
    /// Image size in pixels.
    pub size: (u32, u32),
    /// Caption.
    pub title: String,
}

struct Data {
    points: Vec<(f64, f64)>,
    front: Vec<(f64, f64)>,
    x: (f64, f64),
    y: (f64, f64),
}

/// Render the plot to `path` (`.svg` or `.png`).
pub fn plot_search(path: &Path, problem: &Problem, spec: &PlotSpec<'_>) -> Result<()> {
    let plot_err = |reason: String| Error::Plot {
        path: path.to_path_buf(),
        reason,
    };
    let all = problem.all_points();
    let front: Vec<(f64, f64)> = problem
        .pareto_front(Objective::Score)?
        .points
        .iter()
        .map(|p| (p.latency_us, p.value))
        .collect();
    let mut xs = all.iter().map(|p| p.0).chain([spec.budget_us]);
    let first = xs.next().unwrap_or(0.0);
    let (mut x0, mut x1) = xs.fold((first, first), |(a, b), x| (a.min(x), b.max(x)));
    let (mut y0, mut y1) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    if !(x0.is_finite() && x1.is_finite() && y0.is_finite() && y1.is_finite()) {
        return Err(plot_err("no finite points to plot".into()));
    }
    let (dx, dy) = ((x1 - x0).max(1e-9) * 0.05, (y1 - y0).max(1e-9) * 0.08);
    (x0, x1, y0, y1) = (x0 - dx, x1 + dx, y0 - dy, y1 + dy);
    // One point per 2x2-pixel cell: the marks overlap anyway, the SVG stays small.
    let (w, h) = (f64::from(spec.size.0) / 2.0, f64::from(spec.size.1) / 2.0);
    let mut seen = HashSet::new();
    let points = all
        .into_iter()
        .filter(|&(x, y)| {
            let cell = (
                ((x - x0) / (x1 - x0) * w) as i64,
                ((y - y0) / (y1 - y0) * h) as i64,
            );
            seen.insert(cell)
        })
        .collect();
    let data = Data {
        points,
        front,
        x: (x0, x1),
        y: (y0, y1),
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => draw(
            SVGBackend::new(path, spec.size).into_drawing_area(),
            &data,
            spec,
        ),
        // Text in a bitmap goes through font-kit, which loads fontconfig at run time and panics
        // when it is missing: turn that into an error (SVG needs no fonts).
        Some("png") => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            draw(
                BitMapBackend::new(path, spec.size).into_drawing_area(),
                &data,
                spec,
            )
        }))
        .unwrap_or_else(|_| {
            Err(
                "PNG text rendering failed (is fontconfig with a sans-serif font installed?); \
                 use .svg"
                    .to_string(),
            )
        }),
        _ => Err("unsupported extension: use .svg or .png".to_string()),
    }
    .map_err(plot_err)
}

/// Plot a [`SearchReport`]: the exact answer highlighted, the paper-mode answer beside it.
pub fn plot_report(path: &Path, problem: &Problem, report: &SearchReport) -> Result<()> {
    let spec = PlotSpec {
        budget_us: report.exact.budget_us,
        chosen: &report.exact.chosen,
        chosen_label: "exact",
        other: report.paper.as_ref().map(|p| ("paper mode", &p.chosen)),
        size: (1000, 700),
        title: format!(
            "{} on {}: latency vs weighted score",
            problem.latency().model_hash,
            problem.latency().target
        ),
    };
    plot_search(path, problem, &spec)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    data: &Data,
    spec: &PlotSpec<'_>,
) -> std::result::Result<(), String> {
    let s = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(s)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&spec.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(data.x.0..data.x.1, data.y.0..data.y.1)
        .map_err(s)?;
    chart
        .configure_mesh()
        .x_desc("predicted latency (us)")
        .y_desc("weighted score")
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 14))
        .light_line_style(BLACK.mix(0.05))
        .draw()
        .map_err(s)?;
    let cloud = RGBColor(70, 110, 200).mix(0.5);
    chart
        .draw_series(
            data.points
                .iter()
                .map(|&p| Circle::new(p, 2, cloud.filled())),
        )
        .map_err(s)?
        .label("configuration")
        .legend(move |(x, y)| Circle::new((x + 10, y), 3, cloud.filled()));
    // The front as a staircase: the best score reachable at a latency holds until the next
    // front point.
    let mut stairs = Vec::with_capacity(2 * data.front.len());
    for (i, &p) in data.front.iter().enumerate() {
        if i > 0 {
            stairs.push((p.0, data.front[i - 1].1));
        }
        stairs.push(p);
    }
    if let Some(&(_, y)) = data.front.last() {
        stairs.push((data.x.1, y));
    }
    chart
        .draw_series(LineSeries::new(stairs, BLACK.stroke_width(2)))
        .map_err(s)?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    let budget = RED.stroke_width(2);
    chart
        .draw_series(LineSeries::new(
            [(spec.budget_us, data.y.0), (spec.budget_us, data.y.1)],
            budget,
        ))
        .map_err(s)?
        .label(format!("budget {} us", round_label(spec.budget_us)))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], budget));
    if let Some((label, other)) = spec.other {
        let c = RGBColor(230, 140, 0);
        chart
            .draw_series([TriangleMarker::new(
                (other.latency_us, other.score),
                9,
                c.filled(),
            )])
            .map_err(s)?
            .label(format!(
                "{label} {:?} ({:.4})",
                other.config.indices, other.score
            ))
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, c.filled()));
    }
    let g = RGBColor(0, 150, 60);
    let chosen = spec.chosen;
    chart
        .draw_series([
            Circle::new((chosen.latency_us, chosen.score), 7, g.filled()),
            Circle::new((chosen.latency_us, chosen.score), 9, BLACK.stroke_width(1)),
        ])
        .map_err(s)?
        .label(format!(
            "{} {:?} ({:.4})",
            spec.chosen_label, chosen.config.indices, chosen.score
        ))
        .legend(move |(x, y)| Circle::new((x + 10, y), 5, g.filled()));
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(s)?;
    root.present().map_err(s)?;
    Ok(())
}

/// `450` for whole numbers, else one decimal.
fn round_label(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x}")
    } else {
        format!("{x:.1}")
    }
}

/// One series of a [`Panel`]: points joined by lines, or marks alone.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// `(x, y)` points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Join the points with a line (else marks only).
    pub line: bool,
}

/// One chart of a [`plot_panels`] figure.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_desc: String,
    /// Y axis description.
    pub y_desc: String,
    /// The series, each in its own colour.
    pub series: Vec<Series>,
}

/// Small multiples: `panels` in a grid of `cols` columns, each `panel_size` pixels, to `path`
/// (`.svg`; `.png` needs fontconfig as [`plot_search`] says).
pub fn plot_panels(
    path: &Path,
    panels: &[Panel],
    cols: usize,
    panel_size: (u32, u32),
) -> Result<()> {
    let plot_err = |reason: String| Error::Plot {
        path: path.to_path_buf(),
        reason,
    };
    if panels.is_empty() {
        return Err(plot_err("nothing to plot".into()));
    }
    let cols = cols.clamp(1, panels.len());
    let rows = panels.len().div_ceil(cols);
    let size = (panel_size.0 * cols as u32, panel_size.1 * rows as u32);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => draw_panels(
            SVGBackend::new(path, size).into_drawing_area(),
            panels,
            rows,
            cols,
        ),
        Some("png") => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            draw_panels(
                BitMapBackend::new(path, size).into_drawing_area(),
                panels,
                rows,
                cols,
            )
        }))
        .unwrap_or_else(|_| Err("PNG text rendering failed; use .svg".to_string())),
        _ => Err("unsupported extension: use .svg or .png".to_string()),
    }
    .map_err(plot_err)
}

fn draw_panels<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    panels: &[Panel],
    rows: usize,
    cols: usize,
) -> std::result::Result<(), String> {
    let s = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(s)?;
    let palette = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(127, 127, 127),
    ];
    for (panel, area) in panels.iter().zip(root.split_evenly((rows, cols))) {
        let all = panel.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = all.fold(
            (
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ),
            |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
        );
        if !(x0.is_finite() && x1.is_finite() && y0.is_finite() && y1.is_finite()) {
            continue;
        }
        let (dx, dy) = ((x1 - x0).max(1e-9) * 0.05, (y1 - y0).max(1e-9) * 0.08);
        (x0, x1, y0, y1) = (x0 - dx, x1 + dx, y0 - dy, y1 + dy);
        let mut chart = ChartBuilder::on(&area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(s)?;
        chart
            .configure_mesh()
            .x_desc(&panel.x_desc)
            .y_desc(&panel.y_desc)
            .axis_desc_style(("sans-serif", 14))
            .label_style(("sans-serif", 12))
            .light_line_style(BLACK.mix(0.05))
            .draw()
            .map_err(s)?;
        // Empty series (a budget nothing fits) get no colour and no legend entry.
        for (i, series) in panel
            .series
            .iter()
            .filter(|s| !s.points.is_empty())
            .enumerate()
        {
            let c = palette[i % palette.len()];
            if series.line {
                chart
                    .draw_series(LineSeries::new(
                        series.points.iter().copied(),
                        c.stroke_width(2),
                    ))
                    .map_err(s)?;
            }
            chart
                .draw_series(series.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(s)?
                .label(&series.label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 12))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(s)?;
    }
    root.present().map_err(s)?;
    Ok(())
}
