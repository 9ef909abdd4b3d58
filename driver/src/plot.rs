//! PNG figures of a run, like CloudButton's: a timeline of tasks over time (one horizontal
//! bar per task from its start to its end, coloured by stage) and a histogram of task
//! durations. Drawn with `plotters` into memory and encoded as PNG, text in a font bundled
//! in the binary (Ubuntu Light from `epaint_default_fonts`): no system fonts needed.

use std::sync::Once;

use bytes::Bytes;
use cloud::Store;
use plotters::prelude::*;

use crate::error::DriverError;
use crate::report::{Report, TaskReport};

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 700;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        if plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        )
        .is_err()
        {
            tracing::warn!("the bundled font could not be registered; figures without text");
        }
    });
}

/// Colour of stage number `i`.
fn colour(i: usize) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    C[i % C.len()]
}

fn encode(buf: Vec<u8>, what: &str) -> Result<Vec<u8>, DriverError> {
    let img = image::RgbImage::from_raw(WIDTH, HEIGHT, buf)
        .ok_or_else(|| DriverError::encode(what, "bitmap size mismatch"))?;
    cog::legend::encode_png(&img).map_err(|e| DriverError::encode(what, e))
}

fn plot_err<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> DriverError + '_ {
    move |e| DriverError::encode(what, format!("{e:?}"))
}

/// Tasks run by this run (not skipped) that have times.
fn timed(report: &Report) -> Vec<&TaskReport> {
    let mut v: Vec<&TaskReport> = report
        .tasks
        .iter()
        .filter(|t| !t.skipped && t.start.is_some() && t.end.is_some())
        .collect();
    v.sort_by_key(|t| t.start);
    v
}

/// The timeline PNG.
pub fn timeline_png(report: &Report) -> Result<Vec<u8>, DriverError> {
    register_font();
    let what = "timeline.png";
    let tasks = timed(report);
    let t0 = tasks
        .iter()
        .filter_map(|t| t.start)
        .min()
        .unwrap_or(report.start);
    let secs = |t: chrono::DateTime<chrono::Utc>| (t - t0).num_milliseconds() as f64 / 1000.0;
    let x_max = tasks
        .iter()
        .filter_map(|t| t.end.map(secs))
        .fold(0.0f64, f64::max)
        .max(0.001)
        * 1.02;
    let stages: Vec<String> = {
        let mut s: Vec<String> = Vec::new();
        for t in &tasks {
            let k = format!("{} ({})", t.step, t.stage);
            if !s.contains(&k) {
                s.push(k);
            }
        }
        s
    };
    let skipped = report.tasks.iter().filter(|t| t.skipped).count();
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err(what))?;
        let title = format!(
            "{} pipeline, {} executor: {} tasks in {:.1} s{}",
            report.pipeline,
            report.executor,
            tasks.len(),
            report.wall_s,
            if skipped > 0 {
                format!(" ({skipped} done earlier, not shown)")
            } else {
                String::new()
            }
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..(tasks.len().max(1) as f64))
            .map_err(plot_err(what))?;
        chart
            .configure_mesh()
            .x_desc("time since the first task started (s)")
            .y_desc("task")
            .disable_y_mesh()
            .label_style(("sans-serif", 16))
            .draw()
            .map_err(plot_err(what))?;
        for (k, name) in stages.iter().enumerate() {
            let c = colour(k);
            let bars = tasks
                .iter()
                .enumerate()
                .filter(|(_, t)| &format!("{} ({})", t.step, t.stage) == name)
                .filter_map(|(i, t)| {
                    let (s, e) = (secs(t.start?), secs(t.end?));
                    let y = i as f64;
                    let fill = if t.state == "ok" {
                        c.filled()
                    } else {
                        RED.filled()
                    };
                    Some(Rectangle::new(
                        [(s, y + 0.1), (e.max(s + x_max * 0.002), y + 0.9)],
                        fill,
                    ))
                })
                .collect::<Vec<_>>();
            chart
                .draw_series(bars)
                .map_err(plot_err(what))?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
        }
        if !stages.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 16))
                .draw()
                .map_err(plot_err(what))?;
        }
        root.present().map_err(plot_err(what))?;
    }
    encode(buf, what)
}

/// The histogram of task durations PNG.
pub fn histogram_png(report: &Report) -> Result<Vec<u8>, DriverError> {
    register_font();
    let what = "durations.png";
    let durations: Vec<f64> = timed(report).iter().filter_map(|t| t.duration_s).collect();
    let max = durations.iter().copied().fold(0.0f64, f64::max).max(0.001);
    let bins = 20usize;
    let width = max / bins as f64;
    let mut counts = vec![0u32; bins];
    for d in &durations {
        let b = ((d / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let y_max = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    let mean = if durations.is_empty() {
        0.0
    } else {
        durations.iter().sum::<f64>() / durations.len() as f64
    };
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err(what))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "task durations: {} tasks, mean {:.2} s, max {:.2} s",
                    durations.len(),
                    mean,
                    max
                ),
                ("sans-serif", 24),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max * 1.02, 0.0..y_max)
            .map_err(plot_err(what))?;
        chart
            .configure_mesh()
            .x_desc("duration (s)")
            .y_desc("tasks")
            .label_style(("sans-serif", 16))
            .draw()
            .map_err(plot_err(what))?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &n)| {
                let x0 = i as f64 * width;
                Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.95, n as f64)],
                    colour(0).filled(),
                )
            }))
            .map_err(plot_err(what))?;
        root.present().map_err(plot_err(what))?;
    }
    encode(buf, what)
}

/// Writes `timeline.png` and `durations.png` under `dir`; returns their URIs.
pub fn write_figures(
    store: &Store,
    report: &Report,
    dir: &str,
) -> Result<Vec<String>, DriverError> {
    let mut out = Vec::new();
    for (name, png) in [
        ("timeline.png", timeline_png(report)?),
        ("durations.png", histogram_png(report)?),
    ] {
        let uri = cloud::uri::join(dir, name);
        store.put(&uri, Bytes::from(png))?;
        out.push(uri);
    }
    Ok(out)
}
