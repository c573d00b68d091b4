//! The comparison as a web page: one self-contained `index.html` with inline SVG charts.
//!
//! The page must open anywhere, offline and years later, so it has no CDN, no external file and
//! no JavaScript framework. Three charts answer three questions: how fast (throughput per scenario
//! as grouped bars, with the run-to-run spread as a line), how predictable (latency percentile
//! curves on log axes, where the tail that averages hide is visible), and at what cost in memory
//! (peak RSS per server). References (servers outside Flash) are drawn beside the lessons but
//! marked: pale bars with a dashed outline, dashed curves, "(reference)" in every legend.
//!
//! `plotters` draws each chart's frame (background, axes, labels) to an SVG string, and uses its
//! coordinate mapping to place the data; the data marks themselves are written here, each with a
//! class (`series`, plus `reference` for a reference) and the server's name in `data-server`, so
//! that the marks of a series can be told from the frame: a background `rect` or an axis
//! `polyline` is no evidence that a bar or a curve was drawn. A few lines of inline script find,
//! in each chart, the servers whose marks were laid out with a non-zero size, and write them into
//! the page, so that a headless browser can prove that every server's series renders in every
//! chart. A chart that cannot be drawn is an error that names it, never a blank figure.

use std::fmt::Write;

use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::output;
use super::results::{Cell, CompareReport, Kind, ServerReport, Status};
use crate::report::group;

/// Width of one throughput panel.
const PANEL_W: u32 = 320;
/// Height of one throughput panel.
const PANEL_H: u32 = 240;

/// The page script: for each chart, the servers with a mark of non-zero size (a bar needs width and
/// height; a curve, which may be flat, needs width), written as JSON into the figure's `data-drawn`;
/// and the number of charts laid out with a size and at least one such mark, in the body's
/// `data-charts-rendered`.
const SCRIPT: &str = "<script>\n\
(function () {\n\
  var n = 0;\n\
  document.querySelectorAll('figure.chart').forEach(function (figure) {\n\
    var svg = figure.querySelector('svg');\n\
    if (!svg) { return; }\n\
    var box = svg.getBoundingClientRect();\n\
    var drawn = {};\n\
    svg.querySelectorAll('.series').forEach(function (mark) {\n\
      var b = mark.getBoundingClientRect();\n\
      var curve = mark.classList.contains('curve');\n\
      if (b.width > 0 && (curve || b.height > 0)) { drawn[mark.getAttribute('data-server')] = true; }\n\
    });\n\
    var names = Object.keys(drawn).sort();\n\
    figure.setAttribute('data-drawn', JSON.stringify(names));\n\
    if (box.width > 0 && box.height > 0 && names.length > 0) { n++; }\n\
  });\n\
  document.body.setAttribute('data-charts-rendered', String(n));\n\
  document.getElementById('rendered').textContent = n + ' charts rendered.';\n\
})();\n\
</script>\n";

/// Renders the whole page, or says which chart could not be drawn.
pub fn render(report: &CompareReport) -> Result<String, String> {
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
         tr.reference td:nth-child(2) {{ font-style: italic; }}\n\
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
    page.push_str("</ul>\n");
    servers(&mut page, report);
    page.push_str("<h2>Throughput</h2>\n<p>Requests per second, median of the runs; the thin line spans the slowest to the fastest run.</p>\n");
    page.push_str(&legend(report));
    if let Some(svg) = throughput_chart(report)? {
        figure(&mut page, "throughput", &svg);
    }
    page.push_str("<h2>Latency</h2>\n<p>Latency at each percentile (both axes logarithmic): the further right, the rarer the request.</p>\n");
    page.push_str(&legend(report));
    for (name, _) in &report.scenarios {
        if let Some(svg) = latency_chart(report, name)? {
            figure(&mut page, &format!("latency-{name}"), &svg);
        }
    }
    page.push_str(
        "<h2>Memory</h2>\n<p>Peak resident memory of each server per scenario (servers started by compare only).</p>\n",
    );
    if let Some(svg) = rss_chart(report)? {
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
    page.push_str("<p id=\"rendered\"></p>\n");
    page.push_str(SCRIPT);
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

/// Says which servers are references, and which were not measured and why.
fn servers(page: &mut String, report: &CompareReport) {
    let references: Vec<String> = report
        .servers
        .iter()
        .filter(|s| s.kind == Kind::Reference && s.skipped.is_none())
        .map(|s| esc(&s.name))
        .collect();
    if !references.is_empty() {
        let _ = writeln!(
            page,
            "<p class=\"references\">References, measured in the same run for scale (servers outside Flash: the \
             ceiling, not a lesson): {}.</p>",
            references.join(", ")
        );
    }
    let skipped: Vec<String> = report
        .servers
        .iter()
        .filter_map(|s| s.skipped.as_ref().map(|why| format!("<li>{}: {}</li>", esc(&s.label()), esc(why))))
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(page, "<p>Not measured:</p>\n<ul class=\"not-measured\">\n{}\n</ul>", skipped.join("\n"));
    }
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

/// Turns a plotters error into the chart's error.
fn drawing<E: std::fmt::Display>(chart: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("the {chart} chart could not be drawn: {e}")
}

/// The data marks of one chart, written as SVG elements and added to plotters' frame at the end.
struct Marks {
    /// The chart's name, for errors.
    chart: String,
    /// The SVG elements.
    svg: String,
}

impl Marks {
    /// No marks yet.
    fn new(chart: &str) -> Marks {
        Marks { chart: chart.to_string(), svg: String::new() }
    }

    /// A bar of `server` from `(x0, y0)` to `(x1, y1)` in pixels, at least one pixel tall so that
    /// a measured server is visible next to one a thousand times faster.
    fn bar(&mut self, server: &ServerReport, a: (i32, i32), b: (i32, i32), colour: RGBColor) {
        let (x, width) = (a.0.min(b.0), (a.0 - b.0).abs());
        let height = (a.1 - b.1).abs().max(1);
        let y = a.1.max(b.1) - height;
        let style = match server.kind {
            Kind::Flash => format!("fill=\"{}\"", rgb(colour)),
            Kind::Reference => format!(
                "fill=\"{c}\" fill-opacity=\"0.35\" stroke=\"{c}\" stroke-width=\"2\" stroke-dasharray=\"5 3\"",
                c = rgb(colour)
            ),
        };
        let _ = writeln!(
            self.svg,
            "<rect class=\"{}\" data-server=\"{}\" x=\"{x}\" y=\"{y}\" width=\"{width}\" height=\"{height}\" {style}/>",
            classes("bar", server),
            esc(&server.name)
        );
    }

    /// A thin vertical line (the run-to-run spread); not a series of its own.
    fn spread(&mut self, top: (i32, i32), bottom: (i32, i32)) {
        let _ = writeln!(
            self.svg,
            "<line class=\"spread\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\" stroke-width=\"2\"/>",
            top.0, top.1, bottom.0, bottom.1
        );
    }

    /// A curve of `server` through `points` (pixels).
    fn curve(&mut self, server: &ServerReport, points: &[(i32, i32)], colour: RGBColor) {
        let points: Vec<String> = points.iter().map(|(x, y)| format!("{x},{y}")).collect();
        let dash = if server.kind == Kind::Reference { " stroke-dasharray=\"6 3\"" } else { "" };
        let _ = writeln!(
            self.svg,
            "<polyline class=\"{}\" data-server=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            classes("curve", server),
            esc(&server.name),
            rgb(colour),
            points.join(" ")
        );
    }

    /// Checks that a value can be placed: a non-finite figure would be drawn nowhere, silently.
    fn finite(&self, server: &ServerReport, what: &str, value: f64) -> Result<f64, String> {
        if value.is_finite() {
            Ok(value)
        } else {
            Err(format!("the {} chart could not be drawn: {}'s {what} is {value}", self.chart, server.name))
        }
    }

    /// The frame with the marks inside it.
    fn into_svg(self, mut frame: String) -> Result<String, String> {
        let end = frame
            .rfind("</svg>")
            .ok_or_else(|| format!("the {} chart could not be drawn: the SVG was not closed", self.chart))?;
        frame.insert_str(end, &self.svg);
        Ok(frame)
    }
}

/// The classes of a series mark: `series`, its shape, and `reference` for a reference.
fn classes(shape: &str, server: &ServerReport) -> String {
    match server.kind {
        Kind::Flash => format!("series {shape}"),
        Kind::Reference => format!("series {shape} reference"),
    }
}

/// An SVG colour.
fn rgb(c: RGBColor) -> String {
    format!("rgb({},{},{})", c.0, c.1, c.2)
}

/// Grouped bars: one panel per scenario, one bar per measured server; `None` when nothing was
/// measured.
fn throughput_chart(report: &CompareReport) -> Result<Option<String>, String> {
    let err = drawing("throughput");
    let mut marks = Marks::new("throughput");
    // A figure that is not a number would be drawn nowhere, and the chart would look complete.
    for server in &report.servers {
        for cell in server.cells.iter().filter(|c| !c.runs.is_empty()) {
            for (what, value) in
                [("req/s", cell.median.rps), ("slowest run", cell.rps_min), ("fastest run", cell.rps_max)]
            {
                marks.finite(server, what, value)?;
            }
        }
    }
    let measured = report.measured();
    if measured.is_empty() {
        return Ok(None);
    }
    let n = report.scenarios.len().max(1);
    let cols = n.min(4);
    let rows = n.div_ceil(cols);
    let names: Vec<String> = measured.iter().map(|(_, s)| s.name.clone()).collect();
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (PANEL_W * cols as u32, PANEL_H * rows as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let panels = root.split_evenly((rows, cols));
        for ((scenario, _), panel) in report.scenarios.iter().zip(panels.iter()) {
            let bars: Vec<Bar> = measured
                .iter()
                .enumerate()
                .filter_map(|(slot, (i, server))| {
                    let cell = server.cells.iter().find(|c| &c.scenario == scenario && c.measured())?;
                    Some(Bar { slot, colour: colour(*i), server, cell })
                })
                .collect();
            if bars.is_empty() {
                // Nothing measured here (skipped everywhere, or every server failed): say so
                // instead of drawing an empty axis.
                let style = TextStyle::from(("sans-serif", 14)).color(&BLACK);
                panel
                    .draw_text(&format!("{scenario}: no measurement"), &style, (20, PANEL_H as i32 / 2))
                    .map_err(&err)?;
                continue;
            }
            bars_panel(panel, scenario, &names, &bars, &mut marks)?;
        }
        root.present().map_err(&err)?;
    }
    marks.into_svg(svg).map(Some)
}

/// One bar of the throughput chart.
struct Bar<'a> {
    /// Its position on the axis: the server's among the measured ones.
    slot: usize,
    /// The server's colour.
    colour: RGBColor,
    /// Whose bar it is.
    server: &'a ServerReport,
    /// What it shows.
    cell: &'a Cell,
}

/// One scenario's panel of bars; the bars go into `marks`.
fn bars_panel(
    panel: &DrawingArea<SVGBackend, Shift>,
    scenario: &str,
    names: &[String],
    bars: &[Bar],
    marks: &mut Marks,
) -> Result<(), String> {
    let err = drawing("throughput");
    let top = bars.iter().map(|b| b.cell.rps_max.max(b.cell.median.rps)).fold(0.0, f64::max).max(1.0) * 1.1;
    let count = names.len().max(1) as i32;
    let mut chart = ChartBuilder::on(panel)
        .caption(scenario, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d((0..count).into_segmented(), 0.0..top)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len())
        .x_label_formatter(&|v| server_label(names, v))
        .y_label_formatter(&|v| short_number(*v))
        .label_style(("sans-serif", 10))
        .draw()
        .map_err(&err)?;
    for &Bar { slot, colour, server, cell } in bars {
        let x = slot as i32;
        // A tenth of the segment on each side keeps neighbouring bars apart.
        let (left, _) = chart.backend_coord(&(SegmentValue::Exact(x), 0.0));
        let (right, base) = chart.backend_coord(&(SegmentValue::Exact(x + 1), 0.0));
        let inset = (right - left) / 10;
        let (_, height) = chart.backend_coord(&(SegmentValue::Exact(x), cell.median.rps));
        marks.bar(server, (left + inset, height), (right - inset, base), colour);
        marks.spread(
            chart.backend_coord(&(SegmentValue::CenterOf(x), cell.rps_max)),
            chart.backend_coord(&(SegmentValue::CenterOf(x), cell.rps_min)),
        );
    }
    Ok(())
}

/// Percentile curves of one scenario, one line per server; `None` when no server has a spectrum.
fn latency_chart(report: &CompareReport, scenario: &str) -> Result<Option<String>, String> {
    let chart_name = format!("latency-{scenario}");
    let err = drawing(&chart_name);
    let curves: Vec<Curve> = report
        .servers
        .iter()
        .enumerate()
        .filter_map(|(i, server)| {
            let cell = server.cells.iter().find(|c| c.scenario == scenario && c.measured())?;
            let points: Vec<(f64, f64)> = cell
                .spectrum
                .iter()
                .filter(|q| q.percentile < 100.0 && q.latency_us > 0.0 && q.latency_us.is_finite())
                .map(|q| (1.0 / (1.0 - q.percentile / 100.0), q.latency_us))
                .collect();
            (points.len() >= 2).then_some(Curve { colour: colour(i), server, points })
        })
        .collect();
    if curves.is_empty() {
        return Ok(None);
    }
    // The axis ends on a power of ten (p99, p99.9, ...) so that its labels are round percentiles.
    let points = || curves.iter().flat_map(|c| c.points.iter());
    let widest = points().map(|q| q.0).fold(100.0, f64::max);
    let max_x = 10f64.powf(widest.log10().ceil());
    let min_y = points().map(|q| q.1).fold(f64::INFINITY, f64::min).max(1.0) * 0.8;
    let max_y = points().map(|q| q.1).fold(0.0, f64::max).max(min_y * 10.0) * 1.25;
    let mut marks = Marks::new(&chart_name);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (620, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{scenario}: latency by percentile"), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((1.0..max_x).log_scale(), (min_y..max_y).log_scale())
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| crate::report::latency(*y))
            .label_style(("sans-serif", 10))
            .draw()
            .map_err(&err)?;
        for curve in &curves {
            let pixels: Vec<(i32, i32)> = curve.points.iter().map(|p| chart.backend_coord(p)).collect();
            marks.curve(curve.server, &pixels, curve.colour);
        }
        root.present().map_err(&err)?;
    }
    marks.into_svg(svg).map(Some)
}

/// One curve of a latency chart.
struct Curve<'a> {
    /// The server's colour.
    colour: RGBColor,
    /// Whose curve it is.
    server: &'a ServerReport,
    /// (1 / (1 - percentile), latency in µs), the chart's coordinates.
    points: Vec<(f64, f64)>,
}

/// Peak RSS per server, grouped by server with one bar per scenario; `None` when no server has
/// one (references already running have none).
fn rss_chart(report: &CompareReport) -> Result<Option<String>, String> {
    let err = drawing("rss");
    let servers: Vec<&ServerReport> =
        report.servers.iter().filter(|s| s.cells.iter().any(|c| c.peak_rss_kib.is_some())).collect();
    if servers.is_empty() {
        return Ok(None);
    }
    let scenarios = report.scenarios.len().max(1) as i32;
    let top = servers.iter().flat_map(|s| s.cells.iter().filter_map(|c| c.peak_rss_kib)).fold(0, u64::max) as f64
        / 1024.0
        * 1.15;
    let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
    let mut marks = Marks::new("rss");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("peak RSS (MiB) per server; one bar per scenario, in scenario order", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((0..servers.len() as i32).into_segmented(), 0.0..top.max(1.0))
            .map_err(&err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len())
            .x_label_formatter(&|v| server_label(&names, v))
            .label_style(("sans-serif", 10))
            .draw()
            .map_err(&err)?;
        for (slot, server) in servers.iter().enumerate() {
            for (k, (scenario, _)) in report.scenarios.iter().enumerate() {
                let Some(kib) = server.cells.iter().find(|c| &c.scenario == scenario).and_then(|c| c.peak_rss_kib)
                else {
                    continue;
                };
                // Bars are placed in pixel space inside the server's segment: plotters' segmented
                // axis has no sub-positions, so the segment is divided by hand.
                let (left, base) = chart.backend_coord(&(SegmentValue::Exact(slot as i32), 0.0));
                let (right, _) = chart.backend_coord(&(SegmentValue::Exact(slot as i32 + 1), 0.0));
                let (_, height) = chart.backend_coord(&(SegmentValue::Exact(slot as i32), kib as f64 / 1024.0));
                let width = (right - left) as f64 * 0.8 / f64::from(scenarios);
                let x0 = left + ((right - left) as f64 * 0.1 + width * k as f64) as i32;
                marks.bar(server, (x0, height), (x0 + width.max(1.0) as i32, base), colour(k + 40));
            }
        }
        root.present().map_err(&err)?;
    }
    let mut legend = String::from("<p>");
    for (k, (scenario, _)) in report.scenarios.iter().enumerate() {
        let _ =
            write!(legend, "<span style=\"color: {}\">&#9632;</span> {} &nbsp; ", rgb(colour(k + 40)), esc(scenario));
    }
    legend.push_str("</p>");
    Ok(Some(format!("{}\n{legend}", marks.into_svg(svg)?)))
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
            let class = match (c.status, server.kind) {
                (Status::Failed, _) => " class=\"failed\"",
                (_, Kind::Reference) => " class=\"reference\"",
                _ => "",
            };
            let status =
                if c.note.is_empty() { c.status.to_string() } else { format!("{}: {}", c.status, esc(&c.note)) };
            if !c.measured() {
                let _ = writeln!(
                    page,
                    "<tr{class}><td>{}</td><td>{}</td><td colspan=\"9\">-</td><td>{status}</td></tr>",
                    esc(scenario),
                    esc(&server.label())
                );
                continue;
            }
            let _ = writeln!(
                page,
                "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}&ndash;{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{status}</td></tr>",
                esc(scenario),
                esc(&server.label()),
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
/// (`04-epoll` becomes `04`, the legend above the chart names it), a reference by its first letters.
fn short(name: &str) -> String {
    let b = name.as_bytes();
    if b.len() > 3 && b[..2].iter().all(u8::is_ascii_digit) && b[2] == b'-' {
        name[..2].to_string()
    } else {
        name.chars().take(8).collect()
    }
}

/// The colour key of the measured servers, shared by the throughput and latency charts.
fn legend(report: &CompareReport) -> String {
    let mut html = String::from("<p class=\"legend\">");
    for (i, server) in report.measured() {
        let _ = write!(html, "<span style=\"color: {}\">&#9632;</span> {}", rgb(colour(i)), esc(&server.name));
        if server.kind == Kind::Reference {
            html.push_str(" (reference: pale bar, dashed)");
        }
        html.push_str(" &nbsp; ");
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
    use crate::compare::RunFigures;
    use crate::stats::Quantile;

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

    /// A measured server with one cell per scenario (`hello`, `static`).
    fn server(name: &str, kind: Kind, rps: f64, rss: Option<u64>) -> ServerReport {
        let spectrum = [50.0, 90.0, 99.0].iter().map(|&p| Quantile { percentile: p, latency_us: p * 10.0 }).collect();
        let cell = |scenario: &str| Cell {
            scenario: scenario.into(),
            status: Status::Ok,
            runs: vec![RunFigures { rps, ..RunFigures::default() }],
            median: RunFigures { rps, ..RunFigures::default() },
            rps_min: rps,
            rps_max: rps,
            peak_rss_kib: rss,
            spectrum: Vec::clone(&spectrum),
            ..Cell::default()
        };
        ServerReport { name: name.into(), kind, skipped: None, cells: vec![cell("hello"), cell("static")] }
    }

    fn report(servers: Vec<ServerReport>) -> CompareReport {
        CompareReport {
            scenarios: vec![("hello".into(), String::new()), ("static".into(), String::new())],
            servers,
            ..CompareReport::default()
        }
    }

    /// The `data-server` names of the series marks in a chart's SVG, with the marks' classes.
    fn series(svg: &str) -> Vec<(String, String)> {
        svg.split("<")
            .filter(|tag| tag.contains("class=\"series"))
            .map(|tag| {
                let attr = |name: &str| tag.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap();
                (attr("data-server").to_string(), attr("class").to_string())
            })
            .collect()
    }

    #[test]
    fn every_measured_server_has_a_marked_series_in_every_chart() {
        let slow = server("01-sequential", Kind::Flash, 100.0, Some(2048));
        let fast = server("04-epoll", Kind::Flash, 1_000_000.0, Some(4096));
        let nginx = server("nginx", Kind::Reference, 900_000.0, None);
        let absent = ServerReport {
            skipped: Some("nginx is not on PATH".into()),
            ..server("hyper", Kind::Reference, 0.0, None)
        };
        let absent = ServerReport { cells: Vec::new(), ..absent };
        let r = report(vec![slow, fast, nginx, absent]);
        let throughput = throughput_chart(&r).unwrap().unwrap();
        let marks = series(&throughput);
        // One bar per server and scenario, a reference's marked as such, the skipped server none.
        assert_eq!(marks.len(), 6, "{marks:?}");
        for name in ["01-sequential", "04-epoll", "nginx"] {
            assert_eq!(marks.iter().filter(|(n, _)| n == name).count(), 2, "{name}: {marks:?}");
        }
        assert!(marks.iter().all(|(n, class)| (n == "nginx") == class.ends_with(" reference")), "{marks:?}");
        // The slow server's bar is a thousand times lower, and still at least a pixel tall.
        assert!(!throughput.contains("height=\"0\""), "{throughput}");
        let latency = latency_chart(&r, "hello").unwrap().unwrap();
        let curves: Vec<String> = series(&latency).into_iter().map(|(n, _)| n).collect();
        assert_eq!(curves, ["01-sequential", "04-epoll", "nginx"]);
        let rss: Vec<String> = series(&rss_chart(&r).unwrap().unwrap()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(rss, ["01-sequential", "01-sequential", "04-epoll", "04-epoll"], "the reference has no RSS");
        let page = render(&r).unwrap();
        assert!(page.contains("<li>hyper (reference): nginx is not on PATH</li>"), "the skip reason is shown");
        assert!(page.contains("nginx (reference: pale bar, dashed)"));
    }

    #[test]
    fn a_chart_that_cannot_be_drawn_is_an_error_naming_it() {
        let mut broken = server("04-epoll", Kind::Flash, 1000.0, None);
        broken.cells[0].median.rps = f64::NAN;
        let error = render(&report(vec![broken])).unwrap_err();
        assert_eq!(error, "the throughput chart could not be drawn: 04-epoll's req/s is NaN");
    }
}
