//! The HTML report: one self-contained page (inline CSS and JavaScript, nothing fetched)
//! with scenarios as rows and targets as columns. Each cell links to that target's transcript
//! of the scenario, and each scenario has a timeline (SVG) drawing when every message arrived
//! against the window it was expected in, so a broker whose timers run late shows as dots
//! right of their windows.

use std::fmt::Write as _;
use std::time::Duration;

use super::{ScenarioResult, Status};
use crate::scenario::Level;
use crate::verdict::Timeline;

/// How a cell looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Pass,
    Warn,
    Fail,
    /// A divergence the target's profile lists.
    Known,
    /// Passed in some repeats only.
    Flaky,
    Skip,
    NotRun,
}

impl Tone {
    /// The tone of a run's own status.
    pub fn of(status: &Status) -> Tone {
        match status {
            Status::Pass => Tone::Pass,
            Status::Warn => Tone::Warn,
            Status::Fail | Status::Error(_) => Tone::Fail,
            Status::Skip(_) => Tone::Skip,
            Status::NotRun(_) => Tone::NotRun,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Tone::Pass => "pass",
            Tone::Warn => "warn",
            Tone::Fail => "fail",
            Tone::Known => "known",
            Tone::Flaky => "flaky",
            Tone::Skip => "skip",
            Tone::NotRun => "notrun",
        }
    }
}

/// A page: what the caller (a run, a matrix) has to say, before it is drawn.
pub struct Page<'a> {
    pub title: String,
    /// One line per target.
    pub summary: Vec<String>,
    /// Each column's target: its name and where it is.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Row<'a>>,
}

/// One scenario.
pub struct Row<'a> {
    /// Its key (path under `scenarios/`).
    pub key: String,
    pub name: String,
    /// One per column; `None` where that target did not run it.
    pub cells: Vec<Option<Cell<'a>>>,
    /// The first problem, difference or recorded choice, in one line.
    pub note: String,
}

/// One target's outcome of one scenario.
pub struct Cell<'a> {
    pub label: String,
    pub tone: Tone,
    /// The run whose transcript and timeline the cell opens.
    pub result: &'a ScenarioResult,
}

/// The page of one run on `target`.
pub fn run(results: &[ScenarioResult], target: &str) -> String {
    let rows = results
        .iter()
        .map(|r| Row {
            key: crate::scenario::key(&r.file),
            name: r.name.clone(),
            cells: vec![Some(Cell {
                label: r.status.label().to_owned(),
                tone: Tone::of(&r.status),
                result: r,
            })],
            note: r.note(),
        })
        .collect();
    page(&Page {
        title: format!("lastwill on {target}"),
        summary: vec![super::summary(results)],
        columns: vec![(target.to_owned(), String::new())],
        rows,
    })
}

/// Draws the page.
pub fn page(page: &Page) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = escape(&page.title);
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>"
    );
    out.push_str("<ul class=\"summary\">\n");
    for line in &page.summary {
        let _ = writeln!(out, "<li>{}</li>", escape(line));
    }
    out.push_str("</ul>\n");
    out.push_str(
        "<p class=\"tools\"><label>Filter <input id=\"filter\" type=\"search\" \
         placeholder=\"scenario, name or note\"></label> <label><input id=\"problems\" \
         type=\"checkbox\"> only rows that did not pass everywhere</label></p>\n",
    );
    out.push_str("<table id=\"results\">\n<thead><tr><th>scenario</th>");
    for (name, url) in &page.columns {
        let _ = write!(out, "<th title=\"{}\">{}</th>", escape(url), escape(name));
    }
    out.push_str("<th>first problem, difference or what was recorded</th></tr></thead>\n<tbody>\n");
    for (r, row) in page.rows.iter().enumerate() {
        let all_pass = row
            .cells
            .iter()
            .flatten()
            .all(|c| matches!(c.tone, Tone::Pass | Tone::Skip));
        let _ = write!(
            out,
            "<tr data-pass=\"{}\"><td><a href=\"#s{r}\" title=\"{}\">{}</a></td>",
            all_pass,
            escape(&row.name),
            escape(&row.key)
        );
        for (c, cell) in row.cells.iter().enumerate() {
            match cell {
                Some(cell) => {
                    let _ = write!(
                        out,
                        "<td class=\"cell {}\"><a href=\"#s{r}c{c}\">{}</a></td>",
                        cell.tone.class(),
                        escape(&cell.label)
                    );
                }
                None => out.push_str("<td class=\"cell\">-</td>"),
            }
        }
        let _ = writeln!(out, "<td class=\"note\">{}</td></tr>", escape(&row.note));
    }
    out.push_str("</tbody>\n</table>\n");
    out.push_str(LEGEND);
    for (r, row) in page.rows.iter().enumerate() {
        section(&mut out, page, r, row);
    }
    let _ = writeln!(out, "<script>{SCRIPT}</script>\n</body>\n</html>");
    out
}

/// A scenario's section: its name, its timeline over every target, and each transcript.
fn section(out: &mut String, page: &Page, r: usize, row: &Row) {
    let _ = writeln!(
        out,
        "<section id=\"s{r}\">\n<h2>{} <small>{}</small></h2>",
        escape(&row.name),
        escape(&row.key)
    );
    let lanes: Vec<(String, &Timeline)> = row
        .cells
        .iter()
        .zip(&page.columns)
        .filter_map(|(cell, (name, _))| Some((name.clone(), &cell.as_ref()?.result.timeline)))
        .collect();
    out.push_str(&timeline_svg(&lanes, page.columns.len() > 1));
    for (c, cell) in row.cells.iter().enumerate() {
        let Some(cell) = cell else { continue };
        let transcript = match &cell.result.status {
            Status::Skip(why) | Status::Error(why) | Status::NotRun(why) => why.clone(),
            _ => cell.result.transcript.clone(),
        };
        let _ = writeln!(
            out,
            "<details id=\"s{r}c{c}\"><summary><span class=\"cell {}\">{}</span> {}</summary>\
             <pre>{}</pre></details>",
            cell.tone.class(),
            escape(&cell.label),
            escape(&page.columns[c].0),
            escape(&transcript)
        );
    }
    out.push_str("</section>\n");
}

/// Geometry of the timeline drawing, in SVG user units.
const WIDTH: f64 = 960.0;
const LABEL_WIDTH: f64 = 220.0;
const LANE_HEIGHT: f64 = 24.0;
/// Room above a target's lanes, for the names of its marks.
const TOP: f64 = 22.0;
const BOTTOM: f64 = 24.0;

/// One lane per client of each target that expected or received messages: expected windows
/// as bands (pale: widened by the target's tolerance), arrivals as dots (green inside a window
/// that expects them, red outside), marks as dashed lines.
fn timeline_svg(targets: &[(String, &Timeline)], name_targets: bool) -> String {
    let lanes: Vec<(&str, &Timeline, String)> = targets
        .iter()
        .flat_map(|(target, timeline)| {
            clients(timeline)
                .into_iter()
                .map(move |client| (target.as_str(), *timeline, client))
        })
        .collect();
    if lanes.is_empty() {
        return "<p class=\"quiet\">No messages were expected or received.</p>\n".into();
    }
    let end = targets
        .iter()
        .map(|(_, t)| horizon(t))
        .fold(Duration::from_secs(1), Duration::max)
        .as_secs_f64();
    let plot = WIDTH - LABEL_WIDTH - 12.0;
    let x = |t: Duration| LABEL_WIDTH + plot * (t.as_secs_f64().min(end) / end);
    // each target's lanes start below a line of room for its mark names
    let tops: Vec<f64> = lanes
        .iter()
        .enumerate()
        .scan(0.0, |y, (i, (target, _, _))| {
            if i > 0 && lanes[i - 1].0 != *target {
                *y += TOP;
            }
            let top = TOP + *y;
            *y += LANE_HEIGHT;
            Some(top)
        })
        .collect();
    let height = tops.last().copied().unwrap_or(TOP) + LANE_HEIGHT + BOTTOM;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" \
         height=\"{height}\" role=\"img\" aria-label=\"timeline\">"
    );
    let step = tick_step(end);
    for tick in (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|t| *t <= end + 1e-9)
    {
        let tx = LABEL_WIDTH + plot * (tick / end);
        let _ = writeln!(
            svg,
            "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"{TOP}\" x2=\"{tx:.1}\" y2=\"{:.1}\"/>\
             <text class=\"axis\" x=\"{tx:.1}\" y=\"{:.1}\">{}s</text>",
            height - BOTTOM,
            height - 8.0,
            trim(tick)
        );
    }
    for (i, (target, timeline, client)) in lanes.iter().enumerate() {
        let top = tops[i];
        let middle = top + LANE_HEIGHT / 2.0;
        let label = match (name_targets, timeline.silent.contains(client)) {
            (true, true) => format!("{target}: {client} (expects nothing)"),
            (true, false) => format!("{target}: {client}"),
            (false, true) => format!("{client} (expects nothing)"),
            (false, false) => client.clone(),
        };
        let _ = writeln!(
            svg,
            "<rect class=\"lane\" x=\"{LABEL_WIDTH}\" y=\"{top:.1}\" width=\"{plot:.1}\" \
             height=\"{LANE_HEIGHT}\"/><text class=\"client\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LABEL_WIDTH - 8.0,
            middle + 4.0,
            escape(&label)
        );
        for (mark, at) in &timeline.marks {
            let mx = x(*at);
            let _ = writeln!(
                svg,
                "<line class=\"mark\" x1=\"{mx:.1}\" y1=\"{top:.1}\" x2=\"{mx:.1}\" y2=\"{:.1}\">\
                 <title>{} at {:.3}s</title></line>",
                top + LANE_HEIGHT,
                escape(mark),
                at.as_secs_f64()
            );
            if i == 0 || lanes[i - 1].0 != *target {
                let _ = writeln!(
                    svg,
                    "<text class=\"markname\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    mx + 2.0,
                    top - 3.0,
                    escape(mark)
                );
            }
        }
        for w in timeline.windows.iter().filter(|w| w.client == *client) {
            let state = match (w.held, w.level) {
                (_, Level::May) => "may",
                (true, _) => "held",
                (false, _) => "missed",
            };
            let (wide_from, wide_to) = (x(w.early), w.late.map_or(x_end(plot), x));
            let (from, to) = (x(w.from), w.until.map_or(x_end(plot), x));
            let tip = format!(
                "line {}: {} between {:.3}s and {} ({} with the tolerance)",
                w.line,
                w.what,
                w.from.as_secs_f64(),
                w.until
                    .map_or("the end".to_owned(), |t| format!("{:.3}s", t.as_secs_f64())),
                match w.late {
                    Some(late) => format!(
                        "{:.3}s to {:.3}s",
                        w.early.as_secs_f64(),
                        late.as_secs_f64()
                    ),
                    None => format!("from {:.3}s", w.early.as_secs_f64()),
                }
            );
            let _ = writeln!(
                svg,
                "<g class=\"window {state}\"><title>{}</title>\
                 <rect class=\"tolerance\" x=\"{wide_from:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>\
                 <rect class=\"expected\" x=\"{from:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/></g>",
                escape(&tip),
                top + 3.0,
                (wide_to - wide_from).max(2.0),
                LANE_HEIGHT - 6.0,
                top + 6.0,
                (to - from).max(2.0),
                LANE_HEIGHT - 12.0,
            );
        }
        let judged = timeline.silent.contains(client)
            || timeline.windows.iter().any(|w| w.client == *client);
        for a in timeline.arrivals.iter().filter(|a| a.client == *client) {
            let (class, why) = match a.expected_by {
                Some(line) => ("expected", format!("expected by line {line}")),
                None if judged => ("stray", "outside every window that expects it".to_owned()),
                None => ("other", "not checked".to_owned()),
            };
            let _ = writeln!(
                svg,
                "<circle class=\"arrival {class}\" cx=\"{:.1}\" cy=\"{middle:.1}\" r=\"5\">\
                 <title>{:.3}s {} ({why})</title></circle>",
                x(a.at),
                a.at.as_secs_f64(),
                escape(&a.what)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// The right edge of the plot, for windows open until the end.
fn x_end(plot: f64) -> f64 {
    LABEL_WIDTH + plot
}

/// The clients a timeline has something to draw for, in order of first appearance.
fn clients(timeline: &Timeline) -> Vec<String> {
    let mut clients: Vec<String> = Vec::new();
    let names = timeline
        .windows
        .iter()
        .map(|w| &w.client)
        .chain(&timeline.silent)
        .chain(timeline.arrivals.iter().map(|a| &a.client));
    for name in names {
        if !clients.contains(name) {
            clients.push(name.clone());
        }
    }
    clients
}

/// The latest instant a timeline shows.
fn horizon(timeline: &Timeline) -> Duration {
    let windows = timeline
        .windows
        .iter()
        .flat_map(|w| [Some(w.early), w.late, w.until].into_iter().flatten());
    let arrivals = timeline.arrivals.iter().map(|a| a.at);
    windows
        .chain(arrivals)
        .chain(timeline.marks.iter().map(|(_, at)| *at))
        .fold(timeline.end, Duration::max)
}

/// Seconds between axis ticks: 1, 2 or 5 times a power of ten, for about eight ticks.
fn tick_step(end: f64) -> f64 {
    let rough = end / 8.0;
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power)
}

/// `0.5`, `2`, `12.5`: a tick's seconds without trailing zeros.
fn trim(seconds: f64) -> String {
    let text = format!("{seconds:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the timelines' shapes and colours mean.
const LEGEND: &str = "<p class=\"legend\">Timelines, one lane per client: \
<span class=\"swatch held\"></span> expected window, pale where the target's tolerance \
widens it (red: the expectation failed, grey: only recorded); \
<span class=\"dot expected\"></span> a message inside a window that expects it, \
<span class=\"dot stray\"></span> one outside, <span class=\"dot other\"></span> one no \
expectation looks at; dashed lines are marks. Hover for details; a result opens its \
transcript.</p>\n";

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #1f2328; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .4em; }
h2 { font-size: 1.1em; margin: 1.6em 0 .4em; }
h2 small { color: #59636e; font-weight: normal; margin-left: .5em; }
ul.summary { margin: 0 0 1em; padding-left: 1.2em; }
p.tools { margin: .5em 0; }
p.quiet { color: #59636e; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #d1d9e0; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; }
td.note { color: #59636e; font-size: .9em; max-width: 40em; }
a { color: #0969da; text-decoration: none; }
a:hover { text-decoration: underline; }
.cell { white-space: nowrap; font-weight: 600; }
.cell.pass { background: #dafbe1; } .cell.warn { background: #fff1b8; }
.cell.fail { background: #ffcecb; } .cell.known { background: #f5e0dd; }
.cell.flaky { background: #fbe2c4; } .cell.skip { background: #eff2f5; color: #59636e; }
.cell.notrun { background: #d1d9e0; color: #3d444d; }
span.cell { padding: 0 6px; border-radius: 3px; }
section { border-top: 1px solid #d1d9e0; }
section:target h2 { background: #fff8c5; }
details { margin: .3em 0; }
details > summary { cursor: pointer; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; font-size: 12px; }
svg.timeline { display: block; max-width: 100%; height: auto; }
svg .lane { fill: #fafbfc; stroke: #e6eaef; }
svg .grid { stroke: #e6eaef; }
svg .axis { font-size: 11px; fill: #59636e; text-anchor: middle; }
svg .client { font-size: 12px; fill: #1f2328; text-anchor: end; }
svg .mark { stroke: #8250df; stroke-dasharray: 3 3; }
svg .markname { font-size: 10px; fill: #8250df; }
svg .window.held .tolerance { fill: #b7ebc6; } svg .window.held .expected { fill: #4ac26b; }
svg .window.missed .tolerance { fill: #ffd8d3; } svg .window.missed .expected { fill: #fa4549; }
svg .window.may .tolerance { fill: #dde4ee; } svg .window.may .expected { fill: #8c959f; }
svg .arrival { stroke: #fff; stroke-width: 1.5; }
svg .arrival.expected { fill: #1a7f37; } svg .arrival.stray { fill: #cf222e; }
svg .arrival.other { fill: #59636e; }
p.legend { color: #3d444d; margin-top: 1.5em; }
.swatch { display: inline-block; width: 28px; height: 10px; background: #4ac26b;
  box-shadow: 6px 0 0 #b7ebc6; margin-right: 8px; vertical-align: middle; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
  vertical-align: middle; }
.dot.expected { background: #1a7f37; } .dot.stray { background: #cf222e; }
.dot.other { background: #59636e; }
"#;

const SCRIPT: &str = r##"
(function () {
  "use strict";
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  var filter = document.getElementById("filter");
  var problems = document.getElementById("problems");
  function apply() {
    var words = filter.value.toLowerCase();
    var rows = document.querySelectorAll("#results tbody tr");
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var shown = row.textContent.toLowerCase().indexOf(words) >= 0 &&
        !(problems.checked && row.getAttribute("data-pass") === "true");
      row.hidden = !shown;
      var section = document.getElementById("s" + i);
      if (section) { section.hidden = !shown; }
    }
  }
  filter.addEventListener("input", apply);
  problems.addEventListener("change", apply);
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(10.0), 2.0);
        assert_eq!(tick_step(40.0), 5.0);
        assert_eq!(tick_step(3600.0), 500.0);
        assert_eq!(tick_step(1.0), 0.2);
        assert_eq!(trim(2.0), "2");
        assert_eq!(trim(0.5), "0.5");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
