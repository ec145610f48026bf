//! The PNG plot: time vs fleet size, the operators' path against the bare client.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use serde_json::Value;

/// A sans-serif font for the labels: plotters draws text with a font it is given.
const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_sans_serif() -> anyhow::Result<()> {
    let path = FONTS
        .iter()
        .find(|p| Path::new(p).exists())
        .context("no DejaVu Sans font (apt-get install fonts-dejavu-core)")?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{path} is not a usable font"))
}

pub fn time_vs_size(runs: &[Value], path: &Path) -> anyhow::Result<()> {
    register_sans_serif()?;
    let series = |key: &str| -> Vec<(f64, f64)> {
        runs.iter()
            .map(|r| {
                let n = r["clusters"].as_f64().unwrap_or(0.0);
                (n, r[key].as_f64().unwrap_or(0.0))
            })
            .collect()
    };
    let lines = [
        (
            "all Cluster API objects, operators",
            series("objects_seconds"),
            RED,
        ),
        (
            "same objects, bare client",
            series("baseline_seconds"),
            BLUE,
        ),
        ("all Synced", series("synced_seconds"), GREEN),
    ];
    let max_n = runs
        .iter()
        .filter_map(|r| r["clusters"].as_f64())
        .fold(1.0, f64::max);
    let max_t = lines
        .iter()
        .flat_map(|(_, s, _)| s.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("lcm-bench: time vs clusters", ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_n * 1.05, 0.0..max_t * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("clusters")
        .y_desc("seconds")
        .draw()?;
    for (label, points, color) in lines {
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
