//! `sweep`: the `cache` workload over a range of one parameter, as CSV and an SVG plot.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use crate::load::{CacheReport, LoadSpec, run_cache};
use crate::parse;

/// The parameter a sweep varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Parameter {
    /// Worker threads (or tasks).
    Threads,
    /// `max_messages`.
    MaxMessages,
    /// Plaintext bytes per message.
    Size,
    /// Master-key latency, milliseconds.
    Latency,
    /// Refresh-ahead: 0 = off, 100 = auto, 1-99 = refresh at that percentage of a limit left.
    RefreshAhead,
}

impl Parameter {
    /// Set this parameter of `spec` to `value`, checked as the command line checks the flag.
    fn apply(self, spec: &mut LoadSpec, value: u64) -> Result<(), String> {
        let text = value.to_string();
        let refused = |e: String| format!("--values {value} for --param {}: {e}", self.flag());
        match self {
            Self::Threads => spec.concurrency = parse::workers(&text).map_err(refused)?,
            Self::MaxMessages => spec.max_messages = parse::count_u64(&text).map_err(refused)?,
            Self::Size => spec.message_size = parse::message_size(&text).map_err(refused)?,
            Self::Latency => {
                let ms = parse::millis(&text).map_err(refused)?;
                spec.latency = Duration::from_secs_f64(ms / 1e3);
            }
            Self::RefreshAhead => {
                spec.refresh_ahead = match value {
                    0 => envelope::cache::RefreshAhead::Off,
                    1..=99 => envelope::cache::RefreshAhead::Fraction(value as f64 / 100.0),
                    _ => envelope::cache::RefreshAhead::Auto,
                }
            }
        }
        Ok(())
    }

    fn flag(self) -> &'static str {
        match self {
            Self::Threads => "threads",
            Self::MaxMessages => "max-messages",
            Self::Size => "size",
            Self::Latency => "latency",
            Self::RefreshAhead => "refresh-ahead",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Threads => "threads",
            Self::MaxMessages => "max_messages",
            Self::Size => "message bytes",
            Self::Latency => "master-key latency (ms)",
            Self::RefreshAhead => "refresh-ahead (0 off, % left, 100 auto)",
        }
    }
}

/// Run the sweep, write `sweep.csv` and `sweep.svg` into `out`, return the reports.
pub fn run(
    base: &LoadSpec,
    parameter: Parameter,
    values: &[u64],
    baseline: bool,
    out: &Path,
) -> Result<Vec<(u64, CacheReport)>, String> {
    // Every value is checked before the first run.
    let specs = values
        .iter()
        .map(|&value| {
            let mut spec = base.clone();
            parameter.apply(&mut spec, value).map(|()| (value, spec))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut rows = Vec::new();
    for (value, spec) in specs {
        rows.push((value, run_cache(&spec, baseline)?));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut csv = String::from(
        "value,msg_per_s,mb_per_s,hit_rate,master_key_calls,coalesced_waits,waited_share,p50_us,\
         p99_us,max_us,uncached_msg_per_s,uncached_master_key_calls,uncached_p50_us,\
         uncached_p99_us\n",
    );
    for (value, r) in &rows {
        let c = &r.cached;
        let u = r.uncached.clone().unwrap_or_default();
        let _ = writeln!(
            csv,
            "{value},{:.1},{:.3},{:.5},{},{},{:.6},{},{},{},{:.1},{},{},{}",
            c.msg_per_s,
            c.mb_per_s,
            c.hit_rate.unwrap_or(0.0),
            c.master_key_calls,
            c.coalesced_waits,
            c.waited_share,
            c.p50_us,
            c.p99_us,
            c.max_us,
            u.msg_per_s,
            u.master_key_calls,
            u.p50_us,
            u.p99_us
        );
    }
    std::fs::write(out.join("sweep.csv"), csv).map_err(|e| e.to_string())?;
    plot(&rows, parameter, baseline, &out.join("sweep.svg")).map_err(|e| format!("plot: {e}"))?;
    Ok(rows)
}

fn plot(
    rows: &[(u64, CacheReport)],
    parameter: Parameter,
    baseline: bool,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (960, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(360);
    let xs: Vec<f64> = rows.iter().map(|(v, _)| *v as f64).collect();
    let (x_min, x_max) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let x_range = if x_max > x_min {
        x_min..x_max
    } else {
        (x_min - 1.0)..(x_max + 1.0)
    };
    type Series = (&'static str, RGBColor, Vec<(f64, f64)>);
    let panels: [(
        &str,
        &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        Vec<Series>,
    ); 2] = [
        (
            "messages per second",
            &top,
            vec![
                (
                    "with cache",
                    BLUE,
                    rows.iter()
                        .map(|(v, r)| (*v as f64, r.cached.msg_per_s))
                        .collect(),
                ),
                (
                    "without cache",
                    RED,
                    rows.iter()
                        .filter_map(|(v, r)| r.uncached.as_ref().map(|u| (*v as f64, u.msg_per_s)))
                        .collect(),
                ),
            ],
        ),
        (
            "master-key calls",
            &bottom,
            vec![
                (
                    "with cache",
                    BLUE,
                    rows.iter()
                        .map(|(v, r)| (*v as f64, r.cached.master_key_calls as f64))
                        .collect(),
                ),
                (
                    "without cache",
                    RED,
                    rows.iter()
                        .filter_map(|(v, r)| {
                            r.uncached
                                .as_ref()
                                .map(|u| (*v as f64, u.master_key_calls as f64))
                        })
                        .collect(),
                ),
            ],
        ),
    ];
    for (title, area, series) in panels {
        let y_max = series
            .iter()
            .flat_map(|(_, _, points)| points.iter().map(|p| p.1))
            .fold(1.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{title} vs {}", parameter.label()),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range.clone(), 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc(parameter.label())
            .y_desc(title)
            .draw()?;
        for (name, color, points) in series {
            if points.is_empty() || (!baseline && name == "without cache") {
                continue;
            }
            chart
                .draw_series(LineSeries::new(points.clone(), color))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
