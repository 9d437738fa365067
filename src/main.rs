//! `crmpulse`: the command-line entry point. Parses arguments and configuration, then
//! hands over to the library: `crmpulse::stack` builds `demo`, `run` and `serve` from
//! configuration (docs/architecture.md, "One stack").

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use crmpulse::stack::{Source, Stack};
use crmpulse::{auth, config, kafka, keyring};
use ingest::EventLog;
use ingest::simulator::{Simulator, SimulatorConfig};
use schemas::Clock;

/// The dataflow allocates and frees small records at a high rate; mimalloc does that
/// faster than glibc's malloc and returns less memory to zero again (see
/// docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Live CRM effectiveness analytics.
#[derive(Debug, Parser)]
#[command(name = "crmpulse", version, about)]
struct Cli {
    /// Configuration file (TOML); see docs/operations.md.
    #[arg(long, global = true, env = "CRMPULSE_CONFIG")]
    config: Option<PathBuf>,
    /// Start the clock at this instant (RFC 3339, e.g. 2026-11-20T12:00:00Z) instead of
    /// reading the system clock; it then advances in real time. Everything that asks
    /// "now" reads it: pipeline time, "today", SLA deadlines, token expiry, the demo.
    /// For tests and reproductions (docs/operations.md).
    #[arg(long, global = true, env = "CRMPULSE_NOW", value_name = "RFC3339")]
    now: Option<Clock>,
    /// Log format on stderr: `text` (colours only on a terminal) or `json` (one object
    /// per line, for log shippers). `RUST_LOG` sets the levels (default `info`).
    #[arg(long, global = true, env = "CRMPULSE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`, `span`.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded stack (event log, pipeline, API and dashboard), no synthetic traffic.
    /// With a `[kafka]` section: the pipeline between `crm.events.v1` and `crm.metrics.v1`.
    Run(ServeArgs),
    /// `run` plus the simulator: backfills history, then produces live traffic.
    Demo(DemoArgs),
    /// Write simulated events as NDJSON.
    Simulate(SimulateArgs),
    /// Load an NDJSON file of events into the event log.
    Replay(ReplayArgs),
    /// Apply the ClickHouse schema migrations (`[clickhouse]` in the configuration).
    Migrate,
    /// API and dashboard over a view store fed only from `crm.metrics.v1` (needs `[kafka]`).
    Serve(ListenArgs),
    /// `POST /api/v1/events` as a gateway producing to `crm.events.v1` (needs `[kafka]`).
    Ingest(ListenArgs),
    /// Print `crm.metrics.v1` as JSON lines: an example metrics consumer (needs `[kafka]`).
    TailMetrics(TailMetricsArgs),
    /// Create the Kafka topics named in `[kafka]` (existing ones are kept).
    KafkaTopics,
    /// Smoke-test a running deployment: health, a token round trip, one section, one
    /// WebSocket snapshot; exits 1 naming the step that failed.
    Check(crmpulse::check::CheckArgs),
    /// Mint a dashboard token (JWT) with the configured key, or the data dir's.
    Token(TokenArgs),
    /// Print an account's ingest key (or webhook secret), derived from the server secret.
    IngestKey(IngestKeyArgs),
    /// Rotate, list or retire the data dir's token signing keys (retiring a key ends
    /// every token it signed, on a running server within a second).
    SigningKeys(SigningKeysArgs),
    /// Revoke every token of one user issued until now (or lift that with `--lift`).
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
struct SigningKeysArgs {
    #[command(subcommand)]
    action: SigningKeysAction,
    /// Data dir whose signing keys to change.
    #[arg(long, default_value = "crmpulse-data", global = true)]
    data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum SigningKeysAction {
    /// Make a new key that signs every token from now on; prints its kid. Tokens of the
    /// other keys stay valid until their key is retired.
    Rotate,
    /// One line per key: kid, `current`, `accepted` or `retired`, creation time.
    List,
    /// Stop accepting tokens signed by KID (`initial`: the data dir's secret, whose
    /// tokens carry no kid). The current key cannot be retired.
    Retire {
        /// The key id, as `list` prints it.
        kid: String,
    },
}

#[derive(Debug, Args)]
struct RevokeArgs {
    /// Account of the user's tokens.
    #[arg(long)]
    account: u64,
    /// The user: the tokens' `sub`.
    #[arg(long)]
    sub: String,
    /// Remove the revocation: the user's earlier tokens are accepted again (until they
    /// expire).
    #[arg(long)]
    lift: bool,
    /// Data dir whose revocations to change (`[auth] revocations_file` instead, when
    /// set).
    #[arg(long, default_value = "crmpulse-data")]
    data_dir: PathBuf,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// Account the token reads.
    #[arg(long)]
    account: u64,
    /// admin, supervisor, agent or analyst.
    #[arg(long, value_parser = parse_role)]
    role: query_api::auth::Role,
    /// A team of the holder (repeat for several); a supervisor needs at least one.
    #[arg(long = "team")]
    teams: Vec<String>,
    /// The holder's agent id; required for the agent role.
    #[arg(long)]
    agent: Option<String>,
    /// Who the token is for (shown in the dashboard).
    #[arg(long)]
    sub: Option<String>,
    /// Validity in seconds (default: `[auth] token_ttl_s`, 7 days).
    #[arg(long)]
    ttl_s: Option<u64>,
    /// Data dir whose secret signs the token when `[auth] hs256_secret` is empty.
    #[arg(long, default_value = "crmpulse-data")]
    data_dir: PathBuf,
}

#[derive(Debug, Args)]
struct IngestKeyArgs {
    /// Account the key writes to.
    #[arg(long)]
    account: u64,
    /// Print the account's webhook signing secret instead of its ingest key.
    #[arg(long)]
    webhook_secret: bool,
    /// Data dir whose secret the key derives from when `[auth] hs256_secret` is empty.
    #[arg(long, default_value = "crmpulse-data")]
    data_dir: PathBuf,
}

fn parse_role(s: &str) -> Result<query_api::auth::Role, String> {
    query_api::auth::Role::parse(s)
        .ok_or_else(|| format!("unknown role {s:?}, expected admin, supervisor, agent or analyst"))
}

#[derive(Debug, Args)]
struct ListenArgs {
    /// Address for HTTP.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

#[derive(Debug, Args)]
struct TailMetricsArgs {
    /// Print the complete batches a consumer applies (at progress records) instead of
    /// every record.
    #[arg(long)]
    batches: bool,
    /// Stop once everything the topic held at start has been printed.
    #[arg(long)]
    until_end: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address for the API and dashboard.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory of the durable event log.
    #[arg(long, default_value = "crmpulse-data")]
    data_dir: PathBuf,
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Days of history to backfill on first start (35: every "vs previous period" of a
    /// range up to a month has a full previous period to compare with).
    #[arg(long, default_value_t = 35)]
    backfill_days: u32,
    /// Simulator seed (kept in the data dir after the first start).
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Days of events to generate, ending now.
    #[arg(long, default_value_t = 1)]
    days: u32,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Account id of the generated events.
    #[arg(long, default_value_t = 1)]
    account: u64,
    /// Output file; standard output when absent.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// NDJSON file of events.
    file: PathBuf,
    /// Directory of the event log (the server must not be running on it).
    #[arg(long, default_value = "crmpulse-data")]
    data_dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let config = config::load(cli.config.as_deref())?;
    // The process's one clock: every "now" below is read from it (schemas::clock).
    let clock = cli.now.unwrap_or_default();
    if clock.is_pinned() {
        tracing::warn!(
            now = %schemas::event::format_rfc3339_ms(clock.now_ms()),
            "the clock was started at a fixed instant (--now / CRMPULSE_NOW), not the system clock"
        );
    }
    if matches!(
        cli.command,
        Command::Run(_) | Command::Demo(_) | Command::Serve(_) | Command::Ingest(_)
    ) {
        // A bad `[tls]` section stops a server before it starts anything.
        config.tls.server_config()?;
    }
    match cli.command {
        Command::Run(args) => run(args, &config, cli.config, None, clock),
        Command::Demo(args) => run(
            args.serve,
            &config,
            cli.config,
            Some((args.backfill_days, args.seed)),
            clock,
        ),
        Command::Simulate(args) => simulate(&args, &config, clock),
        Command::Replay(args) => replay(&args, &config, clock),
        Command::Migrate => migrate(&config),
        Command::Serve(args) => serve(args.listen, &config, cli.config, clock),
        Command::Ingest(args) => kafka::ingest(args.listen, &config, clock),
        Command::TailMetrics(args) => kafka::tail_metrics(&config, args.batches, args.until_end),
        Command::KafkaTopics => kafka::create_topics(&config),
        Command::Check(args) => {
            if let Err(e) = crmpulse::check::run(&args) {
                eprintln!("{e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Token(args) => token(&args, &config, clock),
        Command::IngestKey(args) => ingest_key(&args, &config),
        Command::SigningKeys(args) => signing_keys(&args, &config, clock),
        Command::Revoke(args) => revoke(&args, &config, clock),
    }
}

fn signing_keys(
    args: &SigningKeysArgs,
    config: &config::Config,
    clock: Clock,
) -> anyhow::Result<()> {
    let credentials = auth::Credentials::load(&config.auth, Some(&args.data_dir), clock)?;
    let dir = credentials.keyring()?;
    match &args.action {
        SigningKeysAction::Rotate => println!("{}", keyring::rotate(dir, credentials.now_s())?),
        SigningKeysAction::List => {
            for line in keyring::list(dir)? {
                println!("{line}");
            }
        }
        SigningKeysAction::Retire { kid } => {
            keyring::retire(dir, kid)?;
            println!("retired {kid}: its tokens are refused from now on");
        }
    }
    Ok(())
}

fn revoke(args: &RevokeArgs, config: &config::Config, clock: Clock) -> anyhow::Result<()> {
    let credentials = auth::Credentials::load(&config.auth, Some(&args.data_dir), clock)?;
    let file = credentials.revocations_file()?;
    let now = credentials.now_s();
    keyring::revoke(file, args.account, &args.sub, now, args.lift)?;
    if args.lift {
        println!(
            "lifted the revocation of {} in account {}",
            args.sub, args.account
        );
    } else {
        println!(
            "revoked the tokens of {} in account {} issued at or before {}",
            args.sub,
            args.account,
            schemas::event::format_rfc3339_ms(now as i64 * 1000)
        );
    }
    Ok(())
}

fn token(args: &TokenArgs, config: &config::Config, clock: Clock) -> anyhow::Result<()> {
    let credentials = auth::Credentials::load(&config.auth, Some(&args.data_dir), clock)?;
    let sub = args.sub.clone().unwrap_or_else(|| {
        args.agent
            .clone()
            .unwrap_or_else(|| format!("{}@{}", args.role.as_str(), args.account))
    });
    let token = credentials.mint(
        &sub,
        args.account,
        args.role,
        args.teams.clone(),
        args.agent.clone(),
        args.ttl_s.map(std::time::Duration::from_secs),
    )?;
    println!("{token}");
    Ok(())
}

fn ingest_key(args: &IngestKeyArgs, config: &config::Config) -> anyhow::Result<()> {
    // An ingest key carries no time: the system clock is as good as any.
    let credentials = auth::Credentials::load(&config.auth, Some(&args.data_dir), Clock::system())?;
    let (key, webhook_secret) = credentials.ingest_key(args.account)?;
    println!(
        "{}",
        if args.webhook_secret {
            webhook_secret
        } else {
            key
        }
    );
    Ok(())
}

fn migrate(config: &config::Config) -> anyhow::Result<()> {
    use pipeline::sink::clickhouse as ch;
    anyhow::ensure!(
        config.clickhouse.enabled(),
        "no ClickHouse configured: set [clickhouse] url (or CRMPULSE__CLICKHOUSE__URL)"
    );
    let client = ch::Client::new(&config.clickhouse);
    let report = ch::migrate(&client).context("migrating ClickHouse")?;
    for m in ch::migrate::MIGRATIONS {
        let state = if report.applied.contains(&m.version) {
            "applied"
        } else {
            "already applied"
        };
        println!("{:04}_{}: {state}", m.version, m.name);
    }
    println!(
        "database {}: {} migration(s) applied now, {} already",
        client.database(),
        report.applied.len(),
        report.already.len()
    );
    Ok(())
}

/// `demo` and `run`: the stack over the embedded log (`demo` adds the simulator), or
/// over the events topic when `run` finds a `[kafka]` section; serves until Ctrl-C.
fn run(
    args: ServeArgs,
    config: &config::Config,
    config_path: Option<PathBuf>,
    demo: Option<(u32, u64)>,
    clock: Clock,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let credentials = auth::Credentials::load(&config.auth, Some(&args.data_dir), clock)?;
    // The demo writes into the embedded log, whatever else is configured.
    let source = match demo {
        Some(_) => Source::EventLog(args.data_dir.clone()),
        None => Source::for_run(config, &args.data_dir),
    };
    let mut stack = Stack::build(config, source, clock)?;
    if let Some((days, seed)) = demo {
        let tz = query_api::Settings::new(config.accounts.clone())
            .account(1)
            .timezone;
        stack.start_simulator(days, seed, tz)?;
        print_demo_users(&credentials, args.listen)?;
    }
    let result = runtime.block_on(stack.serve(config, &credentials, args.listen, config_path));
    stack.shutdown();
    result
}

/// `serve`: the API over a view store fed only from the metrics topic.
fn serve(
    listen: SocketAddr,
    config: &config::Config,
    config_path: Option<PathBuf>,
    clock: Clock,
) -> anyhow::Result<()> {
    let credentials = auth::Credentials::load(&config.auth, None, clock)?;
    let stack = Stack::build(config, Source::MetricsTopic, clock)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(stack.serve(config, &credentials, listen, config_path));
    stack.shutdown();
    result
}

/// The demo's ready links: one per role, for the simulated team.
fn print_demo_users(credentials: &auth::Credentials, listen: SocketAddr) -> anyhow::Result<()> {
    use query_api::auth::Role;
    if credentials.dashboard.is_none() {
        println!("authentication is off: open http://{listen}/");
        return Ok(());
    }
    let link = |sub: &str, role, teams: &[&str], agent: Option<&str>| {
        credentials
            .mint(
                sub,
                1,
                role,
                teams.iter().map(|t| (*t).to_owned()).collect(),
                agent.map(str::to_owned),
                None,
            )
            .map(|t| format!("http://{listen}/#token={t}"))
    };
    println!("crmpulse demo — open the dashboard as admin:");
    println!("  {}", link("demo-admin", Role::Admin, &[], None)?);
    println!("other demo users (the same dashboard, seen by another role):");
    println!(
        "  supervisor of team-support: {}",
        link("demo-supervisor", Role::Supervisor, &["team-support"], None)?
    );
    println!(
        "  agent agent-01:             {}",
        link("agent-01", Role::Agent, &["team-support"], Some("agent-01"))?
    );
    println!(
        "  analyst:                    {}",
        link("demo-analyst", Role::Analyst, &[], None)?
    );
    if let Ok((key, _)) = credentials.ingest_key(1) {
        println!("ingest key of account 1 (POST /api/v1/events): {key}");
    }
    Ok(())
}

fn simulate(args: &SimulateArgs, config: &config::Config, clock: Clock) -> anyhow::Result<()> {
    let tz = query_api::Settings::new(config.accounts.clone())
        .account(args.account)
        .timezone;
    let now = clock.now_ms();
    let mut sim = Simulator::new(
        SimulatorConfig {
            seed: args.seed,
            account_id: args.account,
            timezone: tz,
            ..SimulatorConfig::default()
        },
        now - i64::from(args.days) * 86_400_000,
    );
    let mut out: Box<dyn std::io::Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut n = 0u64;
    while sim.now_ms() < now {
        let until = (sim.now_ms() + 3_600_000).min(now);
        for e in sim.advance_to(until) {
            writeln!(out, "{}", e.to_json())?;
            n += 1;
        }
    }
    out.flush()?;
    eprintln!("wrote {n} events");
    Ok(())
}

fn replay(args: &ReplayArgs, config: &config::Config, clock: schemas::Clock) -> anyhow::Result<()> {
    let log = EventLog::open_with(&args.data_dir, config.pipeline.log_options(clock))
        .context("opening the event log (stop the server first)")?;
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        )
        .expect("valid template"),
    );
    let stats = ingest::replay::replay_file(&args.file, &log, |bytes, s| {
        bar.set_position(bytes);
        bar.set_message(format!("{} accepted, {} rejected", s.accepted, s.rejected));
    })?;
    bar.finish();
    println!(
        "replayed {}: {} lines, {} accepted, {} duplicates, {} rejected and {} too late (dead-lettered)",
        args.file.display(),
        stats.lines,
        stats.accepted,
        stats.duplicates,
        stats.rejected,
        stats.too_late
    );
    Ok(())
}

/// Logs to stderr in `format`, at the levels of `RUST_LOG` (default `info`). Text has
/// ANSI colours only when stderr is a terminal, so a file, a pipe or journald gets
/// plain lines.
fn init_logs(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}
