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
    let mut w = Writer::default();
    w.text("crmpulse - Executive summary", 18.0, true);
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
            summary["account_id"],
            summary["timezone"].as_str().unwrap_or("UTC")
        ),
        10.0,
        false,
    );
    w.text(&format!("Range {}", range(&summary["range"])), 10.0, false);
    w.text(
        &format!("Compared with {}", range(&summary["previous_range"])),
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
    w.finish()
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

    fn finish(self) -> Vec<u8> {
        let pages = self
            .pages
            .into_iter()
            .map(|ops| PdfPage::new(Mm(PAGE_W), Mm(PAGE_H), ops))
            .collect();
        PdfDocument::new("crmpulse executive summary")
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
