//! The comparison as a web page: one self-contained `index.html` with inline SVG charts.
//!
//! The page must open anywhere, offline and years later, so it has no CDN, no external file and
//! no JavaScript framework: `plotters` draws each chart to an SVG string that is pasted into the
//! page. Three charts answer three questions: how fast (throughput per scenario as grouped bars,
//! with the run-to-run spread as a line), how predictable (latency percentile curves on log axes,
//! where the tail that averages hide is visible), and at what cost in memory (peak RSS per server).
//! A few lines of inline script count the charts that were laid out with a non-empty size and
//! write the count into the page, so that a headless browser can prove that the charts render.

use std::fmt::Write;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::{output, Cell, CompareReport};
use crate::report::group;

/// Width of one throughput panel.
const PANEL_W: u32 = 320;
/// Height of one throughput panel.
const PANEL_H: u32 = 240;

/// Renders the whole page.
pub fn render(report: &CompareReport) -> String {
    let mut page = String::new();
    let m = &report.machine;
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Flash comparison</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 1400px; }}\n\
         table {{ border-collapse: collapse; font-size: 14px; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}\n\
         td:nth-child(-n+2), th:nth-child(-n+2), td:last-child {{ text-align: left; }}\n\
         figure.chart {{ margin: 1em 1em 1em 0; display: inline-block; vertical-align: top; }} .failed {{ color: #b00; }} code {{ background: #f4f4f4; }}\n\
         </style>\n</head>\n<body>\n<h1>Flash comparison</h1>\n<p>{} &times; {} CPUs, {} GiB, Linux {}. \
         {} run(s) of {:.1} s per cell; figures are medians{}.</p>\n<p>Command: <code>{}</code></p>\n",
        esc(&m.cpu),
        m.cores,
        m.memory_gib,
        esc(&m.kernel),
        report.runs,
        report.duration_s,
        if report.pinned { "; servers and load generator pinned to separate CPUs" } else { "" },
        esc(&report.command.join(" "))
    );
    page.push_str("<h2>Scenarios</h2>\n<ul>\n");
    for (name, about) in &report.scenarios {
        let _ = writeln!(page, "<li><b>{}</b>: {}</li>", esc(name), esc(about));
    }
    page.push_str("</ul>\n<h2>Throughput</h2>\n<p>Requests per second, median of the runs; the thin line spans the slowest to the fastest run.</p>\n");
    page.push_str(&legend(report));
    figure(&mut page, "throughput", &throughput_chart(report));
    page.push_str("<h2>Latency</h2>\n<p>Latency at each percentile (both axes logarithmic): the further right, the rarer the request.</p>\n");
    for (name, _) in &report.scenarios {
        if let Some(svg) = latency_chart(report, name) {
            figure(&mut page, &format!("latency-{name}"), &svg);
        }
    }
    page.push_str(
        "<h2>Memory</h2>\n<p>Peak resident memory of each server per scenario (servers started by compare only).</p>\n",
    );
    if let Some(svg) = rss_chart(report) {
        figure(&mut page, "rss", &svg);
    }
    page.push_str("<h2>Table</h2>\n");
    table(&mut page, report);
    let verdicts = output::verdicts(report);
    if !verdicts.is_empty() {
        page.push_str("<h2>Differences</h2>\n<ul>\n");
        for line in verdicts {
            let _ = writeln!(page, "<li>{}</li>", esc(line.trim_start_matches("- ")));
        }
        page.push_str("</ul>\n");
    }
    page.push_str(
        "<p id=\"rendered\"></p>\n<script>\n\
         (function () {\n\
           var n = 0;\n\
           document.querySelectorAll('figure.chart svg').forEach(function (svg) {\n\
             var box = svg.getBoundingClientRect();\n\
             var marks = svg.querySelectorAll('rect, polyline, path, circle').length;\n\
             if (box.width > 0 && box.height > 0 && marks > 0) { n++; }\n\
           });\n\
           document.body.setAttribute('data-charts-rendered', String(n));\n\
           document.getElementById('rendered').textContent = n + ' charts rendered.';\n\
         })();\n</script>\n</body>\n</html>\n",
    );
    page
}

/// Wraps an SVG in a figure the page script can find.
fn figure(page: &mut String, id: &str, svg: &str) {
    let _ = writeln!(page, "<figure class=\"chart\" id=\"{}\">\n{svg}\n</figure>", esc(id));
}

/// The servers' colour, the same in every chart.
fn colour(index: usize) -> RGBColor {
    let c = Palette99::pick(index).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Grouped bars: one panel per scenario, one bar per server.
fn throughput_chart(report: &CompareReport) -> String {
    let n = report.scenarios.len().max(1);
    let cols = n.min(4);
    let rows = n.div_ceil(cols);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (PANEL_W * cols as u32, PANEL_H * rows as u32)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let panels = root.split_evenly((rows, cols));
        for ((scenario, _), panel) in report.scenarios.iter().zip(panels.iter()) {
            let bars: Vec<(usize, &Cell)> = report
                .servers
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.cells.iter().find(|c| &c.scenario == scenario).map(|c| (i, c)))
                .collect();
            let top = bars.iter().map(|(_, c)| c.rps_max.max(c.median.rps)).fold(0.0, f64::max).max(1.0) * 1.1;
            let names: Vec<String> = report.servers.iter().map(|s| s.name.clone()).collect();
            let count = report.servers.len().max(1) as i32;
            if bars.iter().all(|(_, c)| c.runs.is_empty()) {
                // Nothing measured here (skipped everywhere, or every server failed): say so
                // instead of drawing an empty axis.
                let style = TextStyle::from(("sans-serif", 14)).color(&BLACK);
                let _ = panel.draw_text(&format!("{scenario}: no measurement"), &style, (20, PANEL_H as i32 / 2));
                continue;
            }
            let Ok(mut chart) = ChartBuilder::on(panel)
                .caption(scenario, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d((0..count).into_segmented(), 0.0..top)
            else {
                continue;
            };
            let _ = chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(names.len())
                .x_label_formatter(&|v| server_label(&names, v))
                .y_label_formatter(&|v| short_number(*v))
                .label_style(("sans-serif", 10))
                .draw();
            for (i, cell) in &bars {
                if cell.runs.is_empty() {
                    continue;
                }
                let x = *i as i32;
                let bar = Rectangle::new(
                    [(SegmentValue::Exact(x), 0.0), (SegmentValue::Exact(x + 1), cell.median.rps)],
                    colour(*i).filled(),
                );
                let _ = chart.draw_series(std::iter::once(bar));
                let _ = chart.draw_series(std::iter::once(PathElement::new(
                    vec![(SegmentValue::CenterOf(x), cell.rps_min), (SegmentValue::CenterOf(x), cell.rps_max)],
                    BLACK.stroke_width(2),
                )));
            }
        }
        let _ = root.present();
    }
    svg
}

/// Percentile curves of one scenario, one line per server.
fn latency_chart(report: &CompareReport, scenario: &str) -> Option<String> {
    let curves: Vec<(usize, Vec<(f64, f64)>)> = report
        .servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let cell = s.cells.iter().find(|c| c.scenario == scenario)?;
            let points: Vec<(f64, f64)> = cell
                .spectrum
                .iter()
                .filter(|q| q.percentile < 100.0 && q.latency_us > 0.0)
                .map(|q| (1.0 / (1.0 - q.percentile / 100.0), q.latency_us))
                .collect();
            (points.len() >= 2).then_some((i, points))
        })
        .collect();
    if curves.is_empty() {
        return None;
    }
    // The axis ends on a power of ten (p99, p99.9, ...) so that its labels are round percentiles.
    let widest = curves.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).fold(100.0, f64::max);
    let max_x = 10f64.powf(widest.log10().ceil());
    let min_y = curves.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).fold(f64::INFINITY, f64::min).max(1.0) * 0.8;
    let max_y = curves.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).fold(0.0, f64::max).max(min_y * 10.0) * 1.25;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (620, 320)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{scenario}: latency by percentile"), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((1.0..max_x).log_scale(), (min_y..max_y).log_scale())
            .ok()?;
        let _ = chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| crate::report::latency(*y))
            .label_style(("sans-serif", 10))
            .draw();
        for (i, points) in curves {
            let c = colour(i);
            if let Ok(series) = chart.draw_series(LineSeries::new(points, c.stroke_width(2))) {
                series
                    .label(report.servers[i].name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            }
        }
        let _ = chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 11))
            .draw();
        let _ = root.present();
    }
    Some(svg)
}

/// Peak RSS per server, grouped by server with one bar per scenario.
fn rss_chart(report: &CompareReport) -> Option<String> {
    let servers: Vec<(usize, &super::ServerReport)> =
        report.servers.iter().enumerate().filter(|(_, s)| s.cells.iter().any(|c| c.peak_rss_kib.is_some())).collect();
    if servers.is_empty() {
        return None;
    }
    let scenarios = report.scenarios.len().max(1) as i32;
    let top = servers.iter().flat_map(|(_, s)| s.cells.iter().filter_map(|c| c.peak_rss_kib)).fold(0, u64::max) as f64
        / 1024.0
        * 1.15;
    let names: Vec<String> = servers.iter().map(|(_, s)| s.name.clone()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let mut chart = ChartBuilder::on(&root)
            .caption("peak RSS (MiB) per server; one bar per scenario, in scenario order", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((0..servers.len() as i32).into_segmented(), 0.0..top.max(1.0))
            .ok()?;
        let _ = chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len())
            .x_label_formatter(&|v| server_label(&names, v))
            .label_style(("sans-serif", 10))
            .draw();
        for (slot, (_, server)) in servers.iter().enumerate() {
            for (k, (scenario, _)) in report.scenarios.iter().enumerate() {
                let Some(kib) = server.cells.iter().find(|c| &c.scenario == scenario).and_then(|c| c.peak_rss_kib)
                else {
                    continue;
                };
                // Bars are placed in pixel space inside the server's segment: plotters' segmented
                // axis has no sub-positions, so the segment is mapped by hand.
                let area = chart.plotting_area();
                let (left, _) = area.map_coordinate(&(SegmentValue::Exact(slot as i32), 0.0));
                let (right, base) = area.map_coordinate(&(SegmentValue::Exact(slot as i32 + 1), 0.0));
                let (_, height) = area.map_coordinate(&(SegmentValue::Exact(slot as i32), kib as f64 / 1024.0));
                let width = (right - left) as f64 * 0.8 / f64::from(scenarios);
                let x0 = left + ((right - left) as f64 * 0.1 + width * k as f64) as i32;
                let rect = Rectangle::new([(x0, height), (x0 + width.max(1.0) as i32, base)], colour(k + 40).filled());
                let _ = root.draw(&rect);
            }
        }
        let _ = root.present();
    }
    let mut legend = String::from("<p>");
    for (k, (scenario, _)) in report.scenarios.iter().enumerate() {
        let c = colour(k + 40);
        let _ = write!(
            legend,
            "<span style=\"color: rgb({},{},{})\">&#9632;</span> {} &nbsp; ",
            c.0,
            c.1,
            c.2,
            esc(scenario)
        );
    }
    legend.push_str("</p>");
    Some(format!("{svg}\n{legend}"))
}

/// The HTML table of every cell.
fn table(page: &mut String, report: &CompareReport) {
    page.push_str(
        "<table>\n<tr><th>scenario</th><th>server</th><th>req/s</th><th>runs (min&ndash;max)</th><th>p50</th><th>p99</th>\
         <th>p99.9</th><th>errors</th><th>peak RSS</th><th>threads</th><th>CPU s</th><th>status</th></tr>\n",
    );
    let lat = crate::report::latency;
    for (scenario, _) in &report.scenarios {
        for server in &report.servers {
            let Some(c) = server.cells.iter().find(|c| &c.scenario == scenario) else { continue };
            let class = if c.status == "failed" { " class=\"failed\"" } else { "" };
            let status =
                if c.note.is_empty() { esc(&c.status) } else { format!("{}: {}", esc(&c.status), esc(&c.note)) };
            if c.runs.is_empty() {
                let _ = writeln!(
                    page,
                    "<tr{class}><td>{}</td><td>{}</td><td colspan=\"9\">-</td><td>{status}</td></tr>",
                    esc(scenario),
                    esc(&server.name)
                );
                continue;
            }
            let _ = writeln!(
                page,
                "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}&ndash;{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{status}</td></tr>",
                esc(scenario),
                esc(&server.name),
                group(c.median.rps.round() as u64),
                group(c.rps_min.round() as u64),
                group(c.rps_max.round() as u64),
                lat(c.median.p50_us),
                lat(c.median.p99_us),
                lat(c.median.p999_us),
                group(c.median.errors),
                c.peak_rss_kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
                c.peak_threads.map_or("-".into(), |t| t.to_string()),
                c.median.cpu_seconds.map_or("-".into(), |s| format!("{s:.2}")),
            );
        }
    }
    page.push_str("</table>\n");
}

/// `50%`, `99%`, `99.9%` for a log-axis position `1 / (1 - p)`.
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x.max(1.0));
    let text = format!("{p:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// `1.2M`, `350k`, `900` for axis labels.
fn short_number(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        // One decimal below 10k, so that ticks 1,000 and 1,200 do not both read "1k".
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// A server name short enough for an axis label under a narrow bar: a Flash server by its number
/// (`04-epoll` becomes `04`, the legend above the chart names it), a peer by its first letters.
fn short(name: &str) -> String {
    let b = name.as_bytes();
    if b.len() > 3 && b[..2].iter().all(u8::is_ascii_digit) && b[2] == b'-' {
        name[..2].to_string()
    } else {
        name.chars().take(8).collect()
    }
}

/// The colour key of the servers, shared by the throughput and latency charts.
fn legend(report: &CompareReport) -> String {
    let mut html = String::from("<p class=\"legend\">");
    for (i, server) in report.servers.iter().enumerate() {
        let c = colour(i);
        let _ = write!(
            html,
            "<span style=\"color: rgb({},{},{})\">&#9632;</span> {} &nbsp; ",
            c.0,
            c.1,
            c.2,
            esc(&server.name)
        );
    }
    html.push_str("</p>\n");
    html
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The label under a bar group: the (shortened) name of the server at that position.
fn server_label(names: &[String], v: &SegmentValue<i32>) -> String {
    match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => short(names.get(*i as usize).map_or("", |s| s.as_str())),
        SegmentValue::Last => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(short_number(1_250_000.0), "1.2M");
        assert_eq!((short_number(1_200.0).as_str(), short_number(1_000.0).as_str()), ("1.2k", "1.0k"));
        assert_eq!(short_number(140_000.0), "140k");
        assert_eq!(esc("<a&b>"), "&lt;a&amp;b&gt;");
        assert_eq!((short("04-epoll").as_str(), short("nginx-with-a-long-name").as_str()), ("04", "nginx-wi"));
    }
}
