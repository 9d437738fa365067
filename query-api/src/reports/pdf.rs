//! The executive summary as a PDF (`GET /api/reports/summary.pdf`): A4, the PDF
//! base-14 Helvetica (so every viewer and `pdftotext` read it without an embedded
//! font), bars drawn as vector paths, pages broken between lines.
//!
//! It renders the summary body and nothing else, so the PDF holds the numbers of the
//! JSON answer for the same query, which are the dashboard's.

use printpdf::{
    BuiltinFont, Color, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Polygon, PolygonRing, Pt, Rgb, TextItem, WindingOrder,
};
use serde_json::Value;

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const MARGIN: f32 = 18.0;
/// Characters of 10 pt Helvetica that fit between the margins, for wrapping.
const WRAP: usize = 95;

/// What the PDF says about the request, besides the summary.
pub struct Header<'a> {
    /// The filters applied, as `name=value` (empty: none).
    pub filters: &'a [(String, String)],
    /// When the PDF was made (the server clock), RFC 3339.
    pub generated_at: &'a str,
}

/// The summary body rendered as a PDF document.
pub fn render(summary: &Value, header: &Header<'_>) -> Vec<u8> {
    render_report("Executive summary", &[Part::Summary(summary)], header)
}

/// One part of a report.
#[derive(Clone, Copy)]
pub enum Part<'a> {
    /// The executive summary body.
    Summary(&'a Value),
    /// A dashboard section's body, by section name.
    Section(&'a str, &'a Value),
}

impl Part<'_> {
    fn body(&self) -> &Value {
        match self {
            Part::Summary(b) | Part::Section(_, b) => b,
        }
    }
}

/// A report of `parts` (the summary, sections) as one PDF: a title block with the
/// account, time zone, range, filters and generation time, then each part, every
/// section from a new page. Every number printed is one of the parts' bodies, so the
/// PDF holds the numbers of the JSON answers for the same query.
pub fn render_report(title: &str, parts: &[Part<'_>], header: &Header<'_>) -> Vec<u8> {
    lay_out(title, parts, header).finish(title)
}

/// The pages of [`render_report`], before they are written out.
fn lay_out(title: &str, parts: &[Part<'_>], header: &Header<'_>) -> Writer {
    let mut w = Writer::default();
    if let Some(first) = parts.first() {
        title_block(&mut w, title, first.body(), header);
    }
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Summary(summary) => summary_part(&mut w, summary),
            Part::Section(name, body) => {
                if i > 0 {
                    w.page();
                }
                section_part(&mut w, name, body);
            }
        }
    }
    w
}

fn title_block(w: &mut Writer, title: &str, body: &Value, header: &Header<'_>) {
    w.text(&format!("crmpulse - {title}"), 18.0, true);
    w.gap(2.0);
    let range = |r: &Value| {
        format!(
            "{} to {}",
            r["from"].as_str().unwrap_or("?"),
            r["to"].as_str().unwrap_or("?")
        )
    };
    w.text(
        &format!(
            "Account {}, time zone {}",
            body["account_id"],
            body["timezone"].as_str().unwrap_or("UTC")
        ),
        10.0,
        false,
    );
    w.text(&format!("Range {}", range(&body["range"])), 10.0, false);
    w.text(
        &format!("Compared with {}", range(&body["previous_range"])),
        10.0,
        false,
    );
    let filters = if header.filters.is_empty() {
        "none".to_owned()
    } else {
        header
            .filters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    w.text(&format!("Filters: {filters}"), 10.0, false);
    w.text(&format!("Generated {}", header.generated_at), 10.0, false);
}

fn summary_part(w: &mut Writer, summary: &Value) {
    w.heading("Highlights");
    for h in summary["highlights"].as_array().into_iter().flatten() {
        w.wrapped(&format!("- {}", h["text"].as_str().unwrap_or_default()));
    }

    w.heading("Figures (current, previous, change)");
    for f in summary["figures"].as_array().into_iter().flatten() {
        let unit = f["unit"].as_str().unwrap_or_default();
        let show = |v: &Value| match (unit, v.as_f64()) {
            (_, None) => "-".to_owned(),
            ("ratio", Some(x)) => format!("{:.1}%", x * 100.0),
            ("s", Some(_)) => format!("{v} s"),
            _ => v.to_string(),
        };
        let change = f["change"]
            .as_f64()
            .map_or("-".to_owned(), |c| format!("{:+.1}%", c * 100.0));
        w.row(
            &[
                f["label"].as_str().unwrap_or_default(),
                &show(&f["current"]),
                &show(&f["previous"]),
                &change,
            ],
            &[0.0, 70.0, 100.0, 130.0],
        );
        w.bars(f["current"].as_f64(), f["previous"].as_f64());
    }

    let sla = &summary["sla"];
    w.heading("SLA");
    for (name, period) in [("Current", &sla["current"]), ("Previous", &sla["previous"])] {
        w.text(
            &format!(
                "{name}: {} met of {} replied, {} breached unanswered, compliance {}",
                period["met"],
                period["replied"],
                period["breached_unanswered"],
                period["compliance"]
                    .as_f64()
                    .map_or("-".to_owned(), |c| format!("{:.1}%", c * 100.0))
            ),
            10.0,
            false,
        );
    }

    w.heading("WhatsApp: top error codes");
    let failures = summary["whatsapp"]["top_failures"].as_array();
    if failures.is_none_or(Vec::is_empty) {
        w.text("No failed messages.", 10.0, false);
    }
    for f in failures.into_iter().flatten() {
        w.row(
            &[
                &f["error_code"].to_string(),
                f["error_title"].as_str().unwrap_or("-"),
                f["category"].as_str().unwrap_or("-"),
                &format!(
                    "{} message{}",
                    f["count"],
                    if f["count"] == 1 { "" } else { "s" }
                ),
            ],
            &[0.0, 25.0, 100.0, 130.0],
        );
    }

    w.heading("Agents (score, handled, resolved, average first response)");
    for (name, rows) in [
        ("Best", &summary["agents"]["best"]),
        ("Lowest", &summary["agents"]["worst"]),
    ] {
        w.text(name, 10.0, true);
        for a in rows.as_array().into_iter().flatten() {
            w.row(
                &[
                    a["agent_id"].as_str().unwrap_or_default(),
                    &a["score"].to_string(),
                    &a["handled"].to_string(),
                    &a["resolved"].to_string(),
                    &a["frt_avg_s"]
                        .as_f64()
                        .map_or("-".to_owned(), |s| format!("{s} s")),
                ],
                &[0.0, 60.0, 80.0, 100.0, 120.0],
            );
        }
    }
}

/// Lays lines out top to bottom, starting a page when one is full.
struct Writer {
    pages: Vec<Vec<Op>>,
    /// The next line's baseline, from the bottom of the page, in mm.
    y: f32,
}

impl Default for Writer {
    fn default() -> Self {
        Self {
            pages: vec![Vec::new()],
            y: PAGE_H - MARGIN,
        }
    }
}

impl Writer {
    fn ops(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a page")
    }

    /// Room for `mm` more on this page, or a new page.
    fn room(&mut self, mm: f32) {
        if self.y - mm < MARGIN {
            self.pages.push(Vec::new());
            self.y = PAGE_H - MARGIN;
        }
    }

    fn gap(&mut self, mm: f32) {
        self.y -= mm;
    }

    fn put(&mut self, x: f32, text: &str, size: f32, bold: bool) {
        let font = if bold {
            BuiltinFont::HelveticaBold
        } else {
            BuiltinFont::Helvetica
        };
        let y = self.y;
        self.ops().extend([
            Op::StartTextSection,
            Op::SetTextCursor {
                pos: Point::new(Mm(MARGIN + x), Mm(y)),
            },
            Op::SetFont {
                font: PdfFontHandle::Builtin(font),
                size: Pt(size),
            },
            Op::ShowText {
                items: vec![TextItem::Text(latin1(text))],
            },
            Op::EndTextSection,
        ]);
    }

    fn text(&mut self, text: &str, size: f32, bold: bool) {
        let height = size * 0.3528 * 1.35;
        self.room(height);
        self.y -= height;
        self.put(0.0, text, size, bold);
    }

    fn heading(&mut self, text: &str) {
        self.room(16.0);
        self.gap(4.0);
        self.text(text, 13.0, true);
        self.gap(1.0);
    }

    /// `text` wrapped between the margins at word boundaries.
    fn wrapped(&mut self, text: &str) {
        let mut line = String::new();
        for word in text.split(' ') {
            if !line.is_empty() && line.len() + 1 + word.len() > WRAP {
                self.text(&line, 10.0, false);
                line = "  ".to_owned();
            }
            if !line.trim().is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.trim().is_empty() {
            self.text(&line, 10.0, false);
        }
    }

    /// One table row: `cells` at the x offsets `at` (mm from the left margin).
    fn row(&mut self, cells: &[&str], at: &[f32]) {
        let height = 10.0 * 0.3528 * 1.35;
        self.room(height);
        self.y -= height;
        for (cell, x) in cells.iter().zip(at) {
            self.put(*x, cell, 10.0, false);
        }
    }

    /// Two thin bars at the end of the row just written, current (dark) over previous
    /// (light), scaled to the larger of the two.
    fn bars(&mut self, current: Option<f64>, previous: Option<f64>) {
        let largest = current.unwrap_or(0.0).max(previous.unwrap_or(0.0));
        if largest <= 0.0 {
            return;
        }
        let full = 24.0_f64;
        for (value, shade, lift) in [(current, 0.25_f32, 1.7_f32), (previous, 0.7, 0.2)] {
            let width = (value.unwrap_or(0.0) / largest * full) as f32;
            if width > 0.0 {
                let y = self.y + lift;
                self.ops().extend([
                    Op::SetFillColor {
                        col: Color::Rgb(Rgb {
                            r: shade,
                            g: shade,
                            b: shade + 0.15,
                            icc_profile: None,
                        }),
                    },
                    rect(MARGIN + 150.0, y, width, 1.2),
                    Op::SetFillColor {
                        col: Color::Rgb(Rgb {
                            r: 0.0,
                            g: 0.0,
                            b: 0.0,
                            icc_profile: None,
                        }),
                    },
                ]);
            }
        }
    }

    /// Starts a new page (unless this one is still empty).
    fn page(&mut self) {
        if !self.ops().is_empty() {
            self.pages.push(Vec::new());
            self.y = PAGE_H - MARGIN;
        }
    }

    fn finish(self, title: &str) -> Vec<u8> {
        let pages = self
            .pages
            .into_iter()
            .map(|ops| PdfPage::new(Mm(PAGE_W), Mm(PAGE_H), ops))
            .collect();
        PdfDocument::new(&format!("crmpulse {title}"))
            .with_pages(pages)
            .save(&PdfSaveOptions::default(), &mut Vec::new())
    }
}

/// A filled rectangle, `x`, `y` (bottom left), `w`, `h` in mm.
fn rect(x: f32, y: f32, w: f32, h: f32) -> Op {
    let p = |x: f32, y: f32| LinePoint {
        p: Point::new(Mm(x), Mm(y)),
        bezier: false,
    };
    Op::DrawPolygon {
        polygon: Polygon {
            rings: vec![PolygonRing {
                points: vec![p(x, y), p(x + w, y), p(x + w, y + h), p(x, y + h)],
            }],
            mode: PaintMode::Fill,
            winding_order: WindingOrder::NonZero,
        },
    }
}

/// The base-14 fonts cover Latin-1 (WinAnsi): other characters become `?` rather
/// than garbage.
fn latin1(text: &str) -> String {
    text.chars()
        .map(|c| if (c as u32) < 0x100 { c } else { '?' })
        .collect()
}

/// Fields every section body carries that the title block already prints.
const META: &[&str] = &[
    "section",
    "account_id",
    "timezone",
    "range",
    "previous_range",
    "progress",
];

/// Most columns a table prints (the rest are in the JSON answer).
const MAX_COLUMNS: usize = 8;

/// A dashboard section's body, laid out from its shape: scalar fields as a table of
/// names and values, lists of rows as tables (broken across pages with their header
/// repeated), series over time also as a bar chart, grids (the heatmap) as tables.
fn section_part(w: &mut Writer, name: &str, body: &Value) {
    w.text(&format!("Section: {}", human(name)), 15.0, true);
    w.gap(1.0);
    let Some(fields) = body.as_object() else {
        return;
    };
    let scalars: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, v)| !META.contains(&k.as_str()) && (is_scalar(v) || is_scalar_list(v)))
        .map(|(k, v)| (human(k), cell(v)))
        .collect();
    if !scalars.is_empty() {
        w.pairs(&scalars);
    }
    for (key, value) in fields {
        if META.contains(&key.as_str()) || is_scalar(value) || is_scalar_list(value) {
            continue;
        }
        walk(w, &human(key), value, fields);
    }
}

/// Lays out `value` under the heading `label`.
fn walk(w: &mut Writer, label: &str, value: &Value, siblings: &serde_json::Map<String, Value>) {
    match value {
        Value::Object(fields) => {
            let scalars: Vec<(String, String)> = fields
                .iter()
                .filter(|(_, v)| is_scalar(v) || is_scalar_list(v))
                .map(|(k, v)| (human(k), cell(v)))
                .collect();
            if !scalars.is_empty() {
                w.heading(label);
                w.pairs(&scalars);
            } else if fields.values().any(|v| !is_scalar(v)) {
                w.heading(label);
            }
            for (k, v) in fields {
                if !is_scalar(v) && !is_scalar_list(v) {
                    walk(w, &format!("{label} / {}", human(k)), v, fields);
                }
            }
        }
        Value::Array(_) if is_scalar_list(value) => {
            w.heading(label);
            w.wrapped(&cell(value));
        }
        Value::Array(items) if items.iter().all(Value::is_object) => {
            w.heading(label);
            if items.is_empty() {
                w.text("None in this range.", 10.0, false);
                return;
            }
            rows(w, items);
        }
        Value::Array(items) if items.iter().all(is_scalar_list) => {
            // A grid (the heatmap): its row names are a sibling list of strings, when
            // there is one (`weekdays`).
            w.heading(label);
            let names: Vec<String> = siblings
                .values()
                .find_map(|v| {
                    let list = v.as_array()?;
                    (list.len() == items.len() && list.iter().all(Value::is_string))
                        .then(|| list.iter().map(cell).collect())
                })
                .unwrap_or_else(|| (0..items.len()).map(|i| i.to_string()).collect());
            let width = items
                .iter()
                .filter_map(Value::as_array)
                .map(Vec::len)
                .max()
                .unwrap_or(0);
            let mut header = vec![String::new()];
            header.extend((0..width).map(|i| i.to_string()));
            let body: Vec<Vec<String>> = items
                .iter()
                .zip(&names)
                .map(|(row, name)| {
                    let mut cells = vec![name.clone()];
                    cells.extend(row.as_array().into_iter().flatten().map(cell));
                    cells
                })
                .collect();
            w.table(&header, &body, 6.5);
        }
        _ => {}
    }
}

/// A list of objects: a bar chart when it is a series over time, then the table.
fn rows(w: &mut Writer, items: &[Value]) {
    let first = items[0].as_object().expect("objects");
    let mut columns: Vec<&String> = first
        .iter()
        .filter(|(_, v)| is_scalar(v) || is_scalar_list(v))
        .map(|(k, _)| k)
        .collect();
    // What a row is about comes first: its time, else its id or name.
    columns.sort_by_key(|k| match k.as_str() {
        "start" | "hour" | "date" | "at" | "slot" => 0,
        k if k.ends_with("_id") || k == "name" || k == "label" => 1,
        _ => 2,
    });
    columns.truncate(MAX_COLUMNS);
    let time_key = columns
        .iter()
        .find(|k| matches!(k.as_str(), "start" | "hour" | "date" | "at" | "slot"));
    // The series drawn: the first column holding a number other than 0 in some row
    // (a column that is all zeros or nulls draws nothing).
    let value_key = columns.iter().find(|k| {
        Some(**k) != time_key.copied()
            && items
                .iter()
                .any(|i| i[k.as_str()].as_f64().is_some_and(|v| v != 0.0))
    });
    if let (Some(_), Some(value_key)) = (time_key, value_key) {
        let values: Vec<f64> = items
            .iter()
            .map(|i| i[value_key.as_str()].as_f64().unwrap_or(0.0))
            .collect();
        w.chart(&human(value_key), &values);
    }
    let header: Vec<String> = columns.iter().map(|k| human(k)).collect();
    let body: Vec<Vec<String>> = items
        .iter()
        .map(|i| columns.iter().map(|k| cell(&i[k.as_str()])).collect())
        .collect();
    w.table(&header, &body, 8.0);
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

fn is_scalar_list(v: &Value) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(is_scalar))
}

/// A value as a table cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => {
                let s = format!("{f:.4}");
                s.trim_end_matches('0').trim_end_matches('.').to_owned()
            }
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(_) => String::new(),
    }
}

/// `first_response_p90` → `First response p90`; section names likewise.
fn human(key: &str) -> String {
    let spaced = key.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Widths in mm of the text area and of one character of Helvetica at 1 pt (an
/// average over digits and lower case, for truncating cells).
const TEXT_W: f32 = PAGE_W - 2.0 * MARGIN;
const CHAR_MM_PER_PT: f32 = 0.19;

impl Writer {
    /// Names and values, two to a line; a value too long for its half of the line
    /// gets a line of its own, wrapped.
    fn pairs(&mut self, pairs: &[(String, String)]) {
        let (short, long): (Vec<_>, Vec<_>) = pairs
            .iter()
            .partition(|(_, v)| fit(v, 10.0, 42.0).len() == v.len());
        for chunk in short.chunks(2) {
            let cells: Vec<String> = chunk
                .iter()
                .flat_map(|(k, v)| [format!("{k}:"), v.clone()])
                .collect();
            let refs: Vec<&str> = cells.iter().map(|s| fit(s, 10.0, 42.0)).collect();
            self.row(&refs, &[0.0, 45.0, 88.0, 133.0]);
        }
        for (k, v) in long {
            self.wrapped(&format!("{k}: {v}"));
        }
    }

    /// A table: the header in bold, repeated at the top of every page it runs onto.
    fn table(&mut self, header: &[String], rows: &[Vec<String>], size: f32) {
        let n = header.len().max(1);
        let col = TEXT_W / n as f32;
        let height = size * 0.3528 * 1.4;
        let line = |w: &mut Writer, cells: &[String], bold: bool| {
            w.y -= height;
            for (i, c) in cells.iter().enumerate() {
                w.put(i as f32 * col, fit(c, size, col - 1.0), size, bold);
            }
        };
        self.room(height * 3.0);
        line(self, header, true);
        for row in rows {
            if self.y - height < MARGIN {
                self.pages.push(Vec::new());
                self.y = PAGE_H - MARGIN;
                line(self, header, true);
            }
            line(self, row, false);
        }
        self.gap(1.0);
    }

    /// A bar chart of `values` in order (a series over time), 30 mm high, drawn as
    /// vector rectangles with its largest value printed.
    fn chart(&mut self, label: &str, values: &[f64]) {
        const HEIGHT: f32 = 30.0;
        self.room(HEIGHT + 8.0);
        let largest = values.iter().copied().fold(0.0_f64, f64::max);
        self.text(
            &format!("{label} (largest {})", cell(&serde_json::json!(largest))),
            8.0,
            false,
        );
        let base = self.y - HEIGHT - 1.0;
        let n = values.len().max(1) as f32;
        let step = TEXT_W / n;
        let bar = (step * 0.8).max(0.2);
        let mut ops = vec![Op::SetFillColor {
            col: Color::Rgb(Rgb {
                r: 0.2,
                g: 0.4,
                b: 0.7,
                icc_profile: None,
            }),
        }];
        if largest > 0.0 {
            for (i, v) in values.iter().enumerate() {
                let h = (v / largest) as f32 * HEIGHT;
                if h > 0.0 {
                    ops.push(rect(MARGIN + i as f32 * step, base, bar, h));
                }
            }
        }
        ops.push(Op::SetFillColor {
            col: Color::Rgb(Rgb {
                r: 0.6,
                g: 0.6,
                b: 0.6,
                icc_profile: None,
            }),
        });
        ops.push(rect(MARGIN, base - 0.3, TEXT_W, 0.3));
        ops.push(Op::SetFillColor {
            col: Color::Rgb(Rgb {
                r: 0.0,
                g: 0.0,
                b: 0.0,
                icc_profile: None,
            }),
        });
        self.ops().extend(ops);
        self.y = base - 2.0;
    }
}

/// `text` cut to what fits in `width_mm` at `size` pt.
fn fit(text: &str, size: f32, width_mm: f32) -> &str {
    let max = (width_mm / (size * CHAR_MM_PER_PT)).max(1.0) as usize;
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_section_report_lays_out_scalars_series_tables_and_grids_across_pages() {
        let points: Vec<Value> = (0..200)
            .map(|i| json!({"start": format!("2026-12-01T{:02}:00:00Z", i % 24), "count": i}))
            .collect();
        let body = json!({
            "section": "customer-load", "account_id": 7, "timezone": "UTC",
            "range": {"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"},
            "previous_range": {"from": "2026-11-30T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
            "progress": 1,
            "opened": {"total": 4242, "previous": 17, "points": points},
            "peak_hours": [9, 10],
            "heatmap": {"weekdays": ["Mon", "Tue"], "cells": [[1, 2], [3, 4]]},
        });
        let header = Header {
            filters: &[],
            generated_at: "2026-12-02T00:00:00Z",
        };
        let parts = [Part::Section("customer-load", &body)];
        // 200 rows of 8 pt after a chart run over two more A4 pages.
        let pages = lay_out("Dashboard", &parts, &header).pages;
        assert!(pages.len() >= 3, "{} pages", pages.len());
        let text = |ops: &Vec<Op>| -> Vec<String> {
            ops.iter()
                .filter_map(|op| match op {
                    Op::ShowText { items } => Some(
                        items
                            .iter()
                            .map(|i| match i {
                                TextItem::Text(t) => t.clone(),
                                _ => String::new(),
                            })
                            .collect(),
                    ),
                    _ => None,
                })
                .collect()
        };
        let first = text(&pages[0]);
        assert!(
            first.contains(&"Total:".to_owned()) && first.contains(&"4242".to_owned()),
            "{first:?}"
        );
        assert!(first.contains(&"Peak hours:".to_owned()) && first.contains(&"9, 10".to_owned()));
        // The table's header is repeated on the page it runs onto.
        assert_eq!(text(&pages[1])[0], "Start");
        assert!(
            pages.iter().any(|p| text(p).contains(&"Mon".to_owned())),
            "the heatmap's rows are named"
        );
        assert!(render_report("Dashboard", &parts, &header).starts_with(b"%PDF-"));
    }

    #[test]
    fn cells_and_names_read_as_people_write_them() {
        assert_eq!(human("first_response_p90"), "First response p90");
        assert_eq!(human("customer-load"), "Customer load");
        assert_eq!(cell(&json!(0.123456)), "0.1235");
        assert_eq!(cell(&json!(2.0)), "2");
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!([9, 10])), "9, 10");
        assert_eq!(fit("abcdefghij", 10.0, 5.7), "abc");
    }
}
