//! Reports as a service of the stack: one renderer for every PDF (the manual exports
//! and the scheduled mail), the schedules' book, and the scheduler that sends each
//! slot once.
//!
//! The scheduler wakes every `tick_ms`, folds the book, and for every active schedule
//! looks at the slots due since `max(now − catch_up_hours, the schedule's last
//! change)`. A slot nobody has claimed is claimed ([`Book::claim`]); the winner renders
//! the report from the view store at that moment, sends it with retries and
//! exponential backoff, and records the outcome with the PDF. A slot missed while no
//! scheduler ran is sent on start when it is within `catch_up_hours`; older ones are
//! not sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::book::{Book, Claim, Journal, Run, Status};
use super::mail::{self, Mailer};
use super::pdf::{self, Part};
use super::schedule::{SUMMARY, Schedule};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::range;
use crate::sections::{self, Params};

/// `[reports]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// The SMTP server, as a URL (see [`mail`]); without it, schedules can be managed
    /// but nothing is sent.
    pub smtp_url: Option<schemas::Secret>,
    /// A PEM file of the CA that signed the SMTP server's certificate, for a relay
    /// with a private CA (the public roots are trusted otherwise).
    pub smtp_ca_file: Option<std::path::PathBuf>,
    /// The sender, `Name <address>`.
    pub from: String,
    /// A link to the dashboard printed in every mail.
    pub dashboard_url: Option<String>,
    /// Slots missed by less than this (the process was down) are sent on start.
    pub catch_up_hours: u64,
    /// How long runs stay in the history (and their PDFs downloadable).
    pub history_days: u64,
    /// SMTP attempts per run before it is recorded as failed.
    pub retry_attempts: u32,
    /// The wait before the second attempt; it doubles each time.
    pub retry_initial_ms: u64,
    /// How often the scheduler looks for due slots.
    pub tick_ms: u64,
    /// Longest wait for one SMTP conversation.
    pub smtp_timeout_s: u64,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            smtp_ca_file: None,
            from: "crmpulse <reports@localhost>".to_owned(),
            dashboard_url: None,
            catch_up_hours: 24,
            history_days: 90,
            retry_attempts: 5,
            retry_initial_ms: 2_000,
            tick_ms: 1_000,
            smtp_timeout_s: 30,
        }
    }
}

/// The reports of one stack.
pub struct Reports {
    /// Schedules, claims and runs.
    pub book: Arc<Book>,
    /// `[reports]`.
    pub config: ReportsConfig,
    mailer: Option<Mailer>,
    /// Names this process in its claims.
    replica: String,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports")
            .field("replica", &self.replica)
            .field("mailer", &self.mailer)
            .finish_non_exhaustive()
    }
}

/// A new random id, 32 hex digits.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A rendered report: the summary (the mail's body) and the PDF.
pub struct Rendered {
    /// The executive summary of the same query.
    pub summary: Value,
    /// The PDF of the requested parts.
    pub pdf: Vec<u8>,
}

/// Renders `parts` (`summary` and section names, in print order) for `params` as
/// `principal` may see them, every number from one snapshot of the view store: the
/// one renderer of the summary PDF, the dashboard PDF and the scheduled reports.
///
/// # Errors
/// Whatever a section refuses (a bad range, a filter out of scope).
pub fn render(
    app: &AppState,
    title: &str,
    parts: &[String],
    params: &Params,
    now_ms: i64,
    principal: Option<&Principal>,
) -> Result<Rendered, ApiError> {
    let mut reads: Vec<&str> = super::READS.to_vec();
    for p in parts {
        if p != SUMMARY && !reads.contains(&p.as_str()) {
            reads.push(p);
        }
    }
    let bodies: serde_json::Map<String, Value> = reads
        .iter()
        .map(|s| (*s).to_owned())
        .zip(sections::compute_together(
            app, &reads, params, now_ms, principal,
        )?)
        .collect();
    let summary = super::build(&bodies);
    let parts: Vec<Part<'_>> = parts
        .iter()
        .map(|p| {
            if p == SUMMARY {
                Part::Summary(&summary)
            } else {
                Part::Section(p, &bodies[p.as_str()])
            }
        })
        .collect();
    let filters = filters_of(params);
    let generated_at = schemas::event::format_rfc3339_ms(now_ms);
    let pdf = pdf::render_report(
        title,
        &parts,
        &pdf::Header {
            filters: &filters,
            generated_at: &generated_at,
        },
    );
    Ok(Rendered { summary, pdf })
}

/// The filters of `params` as `name=value` pairs, for the PDF's title block.
pub fn filters_of(params: &Params) -> Vec<(String, String)> {
    [
        ("channel", params.channel.map(|c| c.as_str().to_owned())),
        ("inbox_id", params.inbox_id.clone()),
        ("agent_id", params.agent_id.clone()),
        ("team_id", params.team_id.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_owned(), v?)))
    .collect()
}

impl Reports {
    /// Reports over `journal` with `config`.
    ///
    /// # Errors
    /// When the journal cannot be read or `[reports]` names a bad SMTP URL or sender.
    pub fn new(journal: Arc<dyn Journal>, config: ReportsConfig) -> Result<Self, String> {
        let mailer = config
            .smtp_url
            .as_ref()
            .map(|url| {
                Mailer::new(
                    url.expose(),
                    &config.from,
                    Duration::from_secs(config.smtp_timeout_s),
                    config.smtp_ca_file.as_deref(),
                )
            })
            .transpose()?;
        Ok(Self {
            book: Arc::new(Book::open(journal)?),
            config,
            mailer,
            replica: new_id(),
        })
    }

    /// Whether mail can be sent (`[reports] smtp_url` is set).
    pub fn delivers(&self) -> bool {
        self.mailer.is_some()
    }

    /// The start of the history, for `now_ms`.
    pub fn history_since(&self, now_ms: i64) -> i64 {
        now_ms - i64::try_from(self.config.history_days).unwrap_or(i64::MAX / 2) * 86_400_000
    }

    /// Runs the scheduler until the process ends.
    pub async fn schedule(self: Arc<Self>, app: AppState) {
        let tick = Duration::from_millis(self.config.tick_ms.max(50));
        match &self.mailer {
            None => tracing::info!(
                "report delivery is off: set [reports] smtp_url to mail scheduled reports"
            ),
            Some(mailer) => match mailer.check().await {
                Ok(true) => tracing::info!("the SMTP server for reports answers"),
                Ok(false) | Err(_) => tracing::warn!(
                    "the SMTP server for reports does not answer now; runs will retry and record their errors"
                ),
            },
        }
        loop {
            let this = Arc::clone(&self);
            let state = app.clone();
            let won = tokio::task::spawn_blocking(move || this.due(&state)).await;
            match won {
                Ok(Ok(won)) => {
                    for (schedule, claim, date) in won {
                        tokio::spawn(Arc::clone(&self).deliver(app.clone(), schedule, claim, date));
                    }
                }
                Ok(Err(e)) => {
                    metrics::counter!("crmpulse_reports_scheduler_errors_total").increment(1);
                    tracing::error!(error = %e, "report scheduler tick failed");
                }
                Err(e) => tracing::error!(error = %e, "report scheduler tick panicked"),
            }
            tokio::time::sleep(tick).await;
        }
    }

    /// The slots due now that this process has won, claiming every unclaimed one.
    fn due(&self, app: &AppState) -> Result<Vec<(Schedule, Claim, NaiveDate)>, String> {
        self.book.sync()?;
        let pruned = self.book.prune(self.history_since(app.clock.now_ms()))?;
        if pruned > 0 {
            tracing::info!(runs = pruned, "report runs past the history forgotten");
        }
        if self.mailer.is_none() {
            return Ok(Vec::new());
        }
        let now = app.clock.now_ms();
        let catch_up = i64::try_from(self.config.catch_up_hours).unwrap_or(24) * 3_600_000;
        let schedules: Vec<Schedule> = self
            .book
            .read(|s| s.schedules().filter(|s| !s.input.paused).cloned().collect());
        let mut won = Vec::new();
        for schedule in schedules {
            let tz = app.settings.account(schedule.account_id).timezone;
            let after = (now - catch_up).max(schedule.updated_at);
            for (date, due_at) in schedule.slots_between(after, now, tz) {
                let slot = date.to_string();
                if self.book.read(|s| s.winner(&schedule.id, &slot).is_some()) {
                    continue;
                }
                let claim = Claim {
                    run_id: new_id(),
                    schedule_id: schedule.id.clone(),
                    account_id: schedule.account_id,
                    slot,
                    due_at,
                    claimed_by: self.replica.clone(),
                    claimed_at: now,
                };
                if self.book.claim(claim.clone())? {
                    tracing::info!(schedule = %schedule.id, slot = %claim.slot, run = %claim.run_id, "claimed a report slot");
                    won.push((schedule.clone(), claim, date));
                } else {
                    tracing::info!(schedule = %schedule.id, slot = %claim.slot, "another scheduler claimed this slot first");
                }
            }
        }
        Ok(won)
    }

    /// Sends `schedule` now, outside its slots ("send now"); the report covers the
    /// period its slot of today would.
    ///
    /// # Errors
    /// Without SMTP, or when the claim cannot be written.
    pub async fn send_now(
        self: Arc<Self>,
        app: AppState,
        schedule: Schedule,
    ) -> Result<String, ApiError> {
        if self.mailer.is_none() {
            return Err(ApiError::Unavailable(
                "mail delivery is off: set [reports] smtp_url".into(),
            ));
        }
        let now = app.clock.now_ms();
        let tz = app.settings.account(schedule.account_id).timezone;
        let run_id = new_id();
        let claim = Claim {
            run_id: run_id.clone(),
            schedule_id: schedule.id.clone(),
            account_id: schedule.account_id,
            slot: format!("manual-{run_id}"),
            due_at: now,
            claimed_by: self.replica.clone(),
            claimed_at: now,
        };
        let this = Arc::clone(&self);
        let c = claim.clone();
        tokio::task::spawn_blocking(move || this.book.claim(c))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(ApiError::Internal)?;
        tokio::spawn(self.deliver(app, schedule, claim, range::local_date(now, tz)));
        Ok(run_id)
    }

    /// Renders and sends the run `claim` won, then records its outcome.
    async fn deliver(
        self: Arc<Self>,
        app: AppState,
        schedule: Schedule,
        claim: Claim,
        date: NaiveDate,
    ) {
        let Some(mailer) = self.mailer.clone() else {
            return;
        };
        let started = std::time::Instant::now();
        let (from, to) = schedule.period(date);
        let mut run = Run {
            run_id: claim.run_id.clone(),
            schedule_id: schedule.id.clone(),
            schedule_name: schedule.input.name.clone(),
            account_id: schedule.account_id,
            slot: claim.slot.clone(),
            due_at: claim.due_at,
            period: (from.to_string(), to.to_string()),
            recipients: schedule.input.recipients.clone(),
            status: Status::Failed,
            error: None,
            attempts: 0,
            message_bytes: 0,
            pdf_bytes: 0,
            finished_at: claim.due_at,
        };
        let mut pdf = None;
        match self.compose(&app, &schedule, &mailer, (from, to)) {
            Err(e) => run.error = Some(e),
            Ok((message, bytes)) => {
                run.message_bytes = message.formatted().len() as u64;
                run.pdf_bytes = bytes.len() as u64;
                pdf = Some(bytes);
                let mut wait = Duration::from_millis(self.config.retry_initial_ms);
                loop {
                    run.attempts += 1;
                    match mailer.send(message.clone()).await {
                        Ok(()) => {
                            run.status = Status::Sent;
                            run.error = None;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(run = %run.run_id, attempt = run.attempts, permanent = e.permanent, error = %e.message, "report delivery failed");
                            run.error = Some(e.message);
                            if e.permanent || run.attempts >= self.config.retry_attempts.max(1) {
                                break;
                            }
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(600));
                        }
                    }
                }
            }
        }
        run.finished_at = app.clock.now_ms();
        let status = run.status;
        metrics::counter!("crmpulse_reports_runs_total", "status" => match status {
            Status::Sent => "sent",
            _ => "failed",
        })
        .increment(1);
        metrics::histogram!("crmpulse_reports_run_seconds").record(started.elapsed().as_secs_f64());
        tracing::info!(run = %run.run_id, schedule = %run.schedule_id, slot = %run.slot, ?status, attempts = run.attempts, "report run finished");
        let book = Arc::clone(&self.book);
        let result = tokio::task::spawn_blocking(move || book.record(run, pdf.as_deref())).await;
        if let Ok(Err(e)) | Err(e) = result.map_err(|e| e.to_string()) {
            // The claim stays: the history shows the run as interrupted, and it is
            // not sent again.
            tracing::error!(error = %e, "recording a report run failed");
        }
    }

    /// The message of `schedule` for the local dates `[from, to)`, and its PDF.
    fn compose(
        &self,
        app: &AppState,
        schedule: &Schedule,
        mailer: &Mailer,
        (from, to): (NaiveDate, NaiveDate),
    ) -> Result<(lettre::Message, Vec<u8>), String> {
        let mut query: HashMap<String, String> = schedule
            .input
            .filters
            .pairs()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        query.insert("account_id".into(), schedule.account_id.to_string());
        query.insert("from".into(), from.to_string());
        query.insert("to".into(), to.to_string());
        let params = Params::parse(&query).map_err(|e| e.to_string())?;
        let rendered = render(
            app,
            &schedule.input.name,
            &schedule.input.sections,
            &params,
            app.clock.now_ms(),
            None,
        )
        .map_err(|e| e.to_string())?;
        let period = if to == from.succ_opt().unwrap_or(to) {
            from.to_string()
        } else {
            format!("{from} to {}", to.pred_opt().unwrap_or(to))
        };
        let subject = format!("{} - {period}", schedule.input.name);
        let file = format!("crmpulse-{}-{from}.pdf", slug(&schedule.input.name));
        let message = mail::message(
            mailer.from(),
            &schedule.input.recipients,
            &mail::Content {
                subject: &subject,
                summary: &rendered.summary,
                pdf: schedule
                    .input
                    .formats
                    .pdf
                    .then_some((file.as_str(), rendered.pdf.as_slice())),
                html: schedule.input.formats.html,
                dashboard_url: self.config.dashboard_url.as_deref(),
            },
        )?;
        Ok((message, rendered.pdf))
    }
}

/// A schedule name as a file name: lower case letters, digits and dashes.
fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() { "report".to_owned() } else { s }
}
