//! Delivery of a report by SMTP (lettre): the message — a plain-text and an HTML
//! body with the executive summary, and the PDF attached — and one send attempt.
//!
//! The server is one URL (`[reports] smtp_url`), as lettre reads it:
//! `smtp://host:25` (no TLS), `smtp://user:pass@host:587?tls=required` (STARTTLS),
//! `smtps://user:pass@host:465` (TLS from the first byte).

use std::path::Path;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

/// One SMTP server to send through.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug)]
pub struct SendError {
    /// What the server or the connection said.
    pub message: String,
    /// A 5xx answer: retrying sends the same refusal.
    pub permanent: bool,
}

impl Mailer {
    /// A mailer for `smtp_url`, sending as `from`, giving up on a server after
    /// `timeout`.
    ///
    /// # Errors
    /// When the URL or the sender address does not parse, naming which.
    pub fn new(
        smtp_url: &str,
        from: &str,
        timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<Self, String> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| format!("[reports] smtp_url: {e}"))?
            .timeout(Some(timeout));
        if let Some(ca) = ca_file {
            builder = builder.tls(private_ca(smtp_url, ca)?);
        }
        let transport = builder.build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("[reports] from: {from:?} is not a mailbox ({e})"))?;
        Ok(Self { transport, from })
    }

    /// Checks that the server answers (and, with TLS, that its certificate is good).
    ///
    /// # Errors
    /// What the connection or the server said.
    pub async fn check(&self) -> Result<bool, String> {
        self.transport
            .test_connection()
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends `message` once.
    ///
    /// # Errors
    /// The server's refusal or the connection's failure.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError {
                message: e.to_string(),
                permanent: e.is_permanent(),
            })
    }

    /// The sender.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }
}

/// The TLS of `smtp_url` trusting the certificates in the PEM file `ca` (a relay with
/// a private CA) instead of the public roots: `smtps://` is TLS from the first byte,
/// `?tls=required` (or `opportunistic`) is STARTTLS.
fn private_ca(smtp_url: &str, ca: &Path) -> Result<Tls, String> {
    let pem =
        std::fs::read(ca).map_err(|e| format!("[reports] smtp_ca_file {}: {e}", ca.display()))?;
    let cert = Certificate::from_pem(&pem)
        .map_err(|e| format!("[reports] smtp_ca_file {}: {e}", ca.display()))?;
    let url = url::Url::parse(smtp_url).map_err(|e| format!("[reports] smtp_url: {e}"))?;
    let host = url
        .host_str()
        .ok_or("[reports] smtp_url: no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let params = TlsParameters::builder(host)
        .add_root_certificate(cert)
        .build_rustls()
        .map_err(|e| format!("[reports] smtp_ca_file: {e}"))?;
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    match (url.scheme(), tls.as_deref()) {
        ("smtps", _) => Ok(Tls::Wrapper(params)),
        (_, Some("required")) => Ok(Tls::Required(params)),
        (_, Some("opportunistic")) => Ok(Tls::Opportunistic(params)),
        _ => Err(
            "[reports] smtp_ca_file is for TLS: use smtps:// or ?tls=required in smtp_url".into(),
        ),
    }
}

/// What a report message holds.
pub struct Content<'a> {
    /// The subject line.
    pub subject: &'a str,
    /// The executive summary body (`GET /api/reports/summary`).
    pub summary: &'a Value,
    /// The PDF and its file name, when attached.
    pub pdf: Option<(&'a str, &'a [u8])>,
    /// An HTML body besides the plain text.
    pub html: bool,
    /// Where the dashboard is (`[reports] dashboard_url`), for a link.
    pub dashboard_url: Option<&'a str>,
}

/// The message from `from` to `recipients` with `content`.
///
/// # Errors
/// When a recipient does not parse or the message cannot be built.
pub fn message(
    from: &Mailbox,
    recipients: &[String],
    content: &Content<'_>,
) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(content.subject);
    for r in recipients {
        builder = builder.to(r
            .parse::<Mailbox>()
            .map_err(|e| format!("recipient {r:?}: {e}"))?);
    }
    let text = plain(content);
    let body = if content.html {
        MultiPart::alternative_plain_html(text, html(content))
    } else {
        MultiPart::mixed().singlepart(SinglePart::plain(text))
    };
    let message = match content.pdf {
        Some((name, bytes)) => builder.multipart(MultiPart::mixed().multipart(body).singlepart(
            Attachment::new(name.to_owned()).body(
                bytes.to_vec(),
                ContentType::parse("application/pdf").map_err(|e| e.to_string())?,
            ),
        )),
        None => builder.multipart(body),
    };
    message.map_err(|e| e.to_string())
}

/// The summary's lines, shared by the plain and the HTML body.
fn lines(summary: &Value) -> (Vec<String>, Vec<[String; 4]>) {
    let highlights = summary["highlights"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["text"].as_str().map(str::to_owned))
        .collect();
    let figures = summary["figures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let unit = f["unit"].as_str().unwrap_or_default();
            let show = |v: &Value| match (unit, v.as_f64()) {
                (_, None) => "-".to_owned(),
                ("ratio", Some(x)) => format!("{:.1}%", x * 100.0),
                ("s", Some(_)) => format!("{v} s"),
                _ => v.to_string(),
            };
            [
                f["label"].as_str().unwrap_or_default().to_owned(),
                show(&f["current"]),
                show(&f["previous"]),
                f["change"]
                    .as_f64()
                    .map_or("-".to_owned(), |c| format!("{:+.1}%", c * 100.0)),
            ]
        })
        .collect();
    (highlights, figures)
}

fn range_line(summary: &Value) -> String {
    format!(
        "Account {}, {} to {} ({}), compared with {} to {}",
        summary["account_id"],
        summary["range"]["from"].as_str().unwrap_or("?"),
        summary["range"]["to"].as_str().unwrap_or("?"),
        summary["timezone"].as_str().unwrap_or("UTC"),
        summary["previous_range"]["from"].as_str().unwrap_or("?"),
        summary["previous_range"]["to"].as_str().unwrap_or("?"),
    )
}

fn plain(content: &Content<'_>) -> String {
    let (highlights, figures) = lines(content.summary);
    let mut out = format!("{}\n{}\n\n", content.subject, range_line(content.summary));
    out.push_str("Highlights\n");
    for h in &highlights {
        out.push_str(&format!("- {h}\n"));
    }
    out.push_str("\nFigures (current / previous / change)\n");
    for [label, current, previous, change] in &figures {
        out.push_str(&format!("- {label}: {current} / {previous} / {change}\n"));
    }
    if content.pdf.is_some() {
        out.push_str("\nThe full report is attached as a PDF.\n");
    }
    if let Some(url) = content.dashboard_url {
        out.push_str(&format!("Dashboard: {url}\n"));
    }
    out
}

fn html(content: &Content<'_>) -> String {
    let (highlights, figures) = lines(content.summary);
    let mut out = format!(
        "<!doctype html><html><body style=\"font-family:Helvetica,Arial,sans-serif\"><h1 style=\"font-size:18px\">{}</h1><p>{}</p><h2 style=\"font-size:15px\">Highlights</h2><ul>",
        escape(content.subject),
        escape(&range_line(content.summary))
    );
    for h in &highlights {
        out.push_str(&format!("<li>{}</li>", escape(h)));
    }
    out.push_str("</ul><h2 style=\"font-size:15px\">Figures</h2><table cellpadding=\"4\"><tr><th align=\"left\">Figure</th><th align=\"right\">Current</th><th align=\"right\">Previous</th><th align=\"right\">Change</th></tr>");
    for row in &figures {
        out.push_str(&format!(
            "<tr><td>{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td></tr>",
            escape(&row[0]),
            escape(&row[1]),
            escape(&row[2]),
            escape(&row[3])
        ));
    }
    out.push_str("</table>");
    if content.pdf.is_some() {
        out.push_str("<p>The full report is attached as a PDF.</p>");
    }
    if let Some(url) = content.dashboard_url {
        out.push_str(&format!(
            "<p><a href=\"{}\">Open the dashboard</a></p>",
            escape(url)
        ));
    }
    out.push_str("</body></html>");
    out
}

/// Text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_message_carries_the_summary_in_both_bodies_and_the_pdf_attached() {
        let summary = json!({
            "account_id": 1, "timezone": "UTC",
            "range": {"from": "2026-12-05T00:00:00Z", "to": "2026-12-06T00:00:00Z"},
            "previous_range": {"from": "2026-12-04T00:00:00Z", "to": "2026-12-05T00:00:00Z"},
            "highlights": [{"text": "Resolutions <rose> 50%"}],
            "figures": [{"label": "Leads", "unit": "", "current": 3, "previous": 2, "change": 0.5}],
        });
        let from: Mailbox = "crmpulse <reports@example.com>".parse().unwrap();
        let m = message(
            &from,
            &["a@example.com".into(), "b@example.com".into()],
            &Content {
                subject: "Daily report",
                summary: &summary,
                pdf: Some(("r.pdf", b"%PDF-1.7")),
                html: true,
                dashboard_url: None,
            },
        )
        .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains("To: a@example.com, b@example.com"), "{text}");
        assert!(text.contains("multipart/alternative"));
        assert!(
            text.contains("Resolutions &lt;rose&gt; 50%"),
            "HTML escaped"
        );
        assert!(text.contains("- Leads: 3 / 2 / +50.0%"));
        assert!(text.contains("filename=\"r.pdf\""));
        assert_eq!(m.envelope().to().len(), 2, "one message to every recipient");
    }
}
