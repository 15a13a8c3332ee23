//! Export of the loss chart and the current attention heatmap as PNG and SVG
//! through plotters, into `<run_dir>/exports/`. PNG text needs a font: the
//! DejaVu Sans Mono in `assets/` (Bitstream Vera licence) is embedded.

use super::theme::{ColorDepth, Theme};
use crate::app::App;
use crate::sanitize::escape;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The embedded font is valid; should it not be, text drawing fails
        // later with an error message rather than a panic here.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

type DrawResult = Result<(), String>;
/// A curve to draw: legend name, points, colour.
type Curve<'a> = (&'a str, &'a [(f64, f64)], RGBColor);

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn draw_loss<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, app: &App) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let l = &app.loss;
    let all: Vec<&(f64, f64)> = l
        .train
        .points()
        .iter()
        .chain(l.eval_train.points())
        .chain(l.eval_val.points())
        .collect();
    let x_max = all.iter().map(|p| p.0).fold(1.0f64, f64::max);
    let (mut lo, mut hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    } else if hi <= lo {
        hi = lo + 1.0;
    }
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{} loss", escape(&app.run_name)),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x_max, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    let series: [Curve; 4] = [
        ("train", l.train.points(), RGBColor(150, 170, 200)),
        ("train (ema)", &[], RGBColor(30, 80, 160)),
        ("eval train", l.eval_train.points(), RGBColor(40, 150, 60)),
        ("val", l.eval_val.points(), RGBColor(210, 90, 40)),
    ];
    let smooth = crate::app::series::ema(l.train.points(), l.strength);
    for (i, (name, pts, color)) in series.into_iter().enumerate() {
        let pts: Vec<(f64, f64)> = if i == 1 { smooth.clone() } else { pts.to_vec() };
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

fn draw_heatmap<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, app: &App) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let Some(map) = &app.attention.map else {
        return Ok(());
    };
    let n = map.len().max(1);
    let layer = app.attention.layer;
    let sel = app.attention.selection().label();
    let gradient = Theme::builtin("dark", ColorDepth::TrueColor).unwrap_or_default();
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "attention layer {} head {} (step {})",
                layer + 1,
                sel,
                map.step
            ),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, n as f64..0f64)
        .map_err(err)?;
    let label = |v: &f64| {
        let i = v.floor() as usize;
        map.tokens
            .get(i)
            .map(|t| crate::sanitize::truncate_to_width(&escape(t), 8))
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n.min(40))
        .y_labels(n.min(40))
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .x_desc("key")
        .y_desc("query")
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    let cells = (0..map.len()).flat_map(|q| (0..map.len()).map(move |k| (q, k)));
    chart
        .draw_series(cells.map(|(q, k)| {
            let w = app.attention.weight(q, k);
            let color = match gradient.heat(w) {
                ratatui::style::Color::Rgb(r, g, b) => RGBColor(r, g, b),
                _ => RGBColor((w.clamp(0.0, 1.0) * 255.0) as u8, 0, 0),
            };
            Rectangle::new(
                [(k as f64, q as f64), (k as f64 + 1.0, q as f64 + 1.0)],
                color.filled(),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)
}

/// Writes loss-<step>.{png,svg} and, with a map, attention-<step>-L<l>H<h>.{png,svg}.
/// Returns the files written.
pub fn export(app: &App, run_dir: &Path) -> Result<Vec<PathBuf>, String> {
    register_font();
    let dir = run_dir.join("exports");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let step = app.step;
    let loss_png = dir.join(format!("loss-{step}.png"));
    let loss_svg = dir.join(format!("loss-{step}.svg"));
    draw_loss(
        &BitMapBackend::new(&loss_png, (1024, 640)).into_drawing_area(),
        app,
    )
    .map_err(|e| format!("{}: {e}", loss_png.display()))?;
    written.push(loss_png);
    draw_loss(
        &SVGBackend::new(&loss_svg, (1024, 640)).into_drawing_area(),
        app,
    )
    .map_err(|e| format!("{}: {e}", loss_svg.display()))?;
    written.push(loss_svg);
    if let Some(map) = &app.attention.map {
        let stem = format!(
            "attention-{}-L{}H{}",
            map.step,
            app.attention.layer + 1,
            app.attention.selection().label()
        );
        let png = dir.join(format!("{stem}.png"));
        let svg = dir.join(format!("{stem}.svg"));
        draw_heatmap(
            &BitMapBackend::new(&png, (900, 900)).into_drawing_area(),
            app,
        )
        .map_err(|e| format!("{}: {e}", png.display()))?;
        written.push(png);
        draw_heatmap(&SVGBackend::new(&svg, (900, 900)).into_drawing_area(), app)
            .map_err(|e| format!("{}: {e}", svg.display()))?;
        written.push(svg);
    }
    Ok(written)
}
