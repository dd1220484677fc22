//! The SVG chart of the latency distributions: percentile curves (x: the
//! percentile on a "nines" scale, y: latency on a log scale), one panel for
//! mutations and one for fan-out delivery. Text is drawn as SVG `<text>`,
//! so no font files are needed.

use crate::stats::Hist;
use crate::BoxError;
use plotters::prelude::*;
use std::path::Path;

/// A named distribution and its colour.
pub(crate) struct Series {
    pub name: String,
    pub hist: Hist,
    pub color: RGBColor,
    pub dashed: bool,
}

/// The x position of quantile `q`: `-log10(1 - q)` (0 = p0, 1 = p90,
/// 2 = p99, 3 = p99.9).
const X_MAX: f64 = 3.5;

fn curve(h: &Hist) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    let mut x = 0.0;
    while x <= X_MAX + 1e-9 {
        let q = 1.0 - 10f64.powf(-x);
        pts.push((x, h.ms_at(q).max(0.001)));
        x += 0.02;
    }
    pts
}

fn x_label(x: &f64) -> String {
    let q = (1.0 - 10f64.powf(-x)) * 100.0;
    if q < 99.0 {
        format!("p{q:.0}")
    } else {
        format!("p{q:.1}")
    }
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    series: &[Series],
) -> Result<(), BoxError> {
    let series: Vec<&Series> = series.iter().filter(|s| s.hist.len() > 0).collect();
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    for s in &series {
        lo = lo.min(s.hist.min_ms().max(0.01));
        hi = hi.max(s.hist.ms_at(1.0 - 10f64.powf(-X_MAX)));
    }
    if series.is_empty() {
        lo = 0.1;
        hi = 10.0;
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.max(lo * 10.0).log10().ceil());
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..X_MAX, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms, log scale)")
        .x_labels(4)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|v| if *v >= 1.0 { format!("{v:.0}") } else { format!("{v}") })
        .draw()?;
    for s in series {
        let style = ShapeStyle { color: s.color.to_rgba(), filled: false, stroke_width: 2 };
        let pts = curve(&s.hist);
        if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts, 6, 4, style))?
                .label(format!("{} (dashed)", s.name))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        } else {
            chart
                .draw_series(LineSeries::new(pts, style))?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()?;
    Ok(())
}

/// Writes the two-panel chart to `path`.
pub(crate) fn write(path: &Path, title: &str, mutations: &[Series], fanout: &[Series]) -> Result<(), BoxError> {
    let root = SVGBackend::new(path, (1400, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(34);
    top.draw(&Text::new(title.to_owned(), (14, 8), ("sans-serif", 18).into_font()))?;
    let (left, right) = body.split_horizontally(700);
    panel(&left, "Mutation request latency", mutations)?;
    panel(&right, "Fan-out: commit → delivery at each subscriber", fanout)?;
    root.present()?;
    Ok(())
}
