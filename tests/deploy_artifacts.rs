//! The deployment artifacts against the real binary, without Docker, Kubernetes or
//! systemd: `infra/docker/Dockerfile`, `infra/compose/`, `infra/k8s/` and
//! `infra/systemd/` are read as text, and
//! - every `crmpulse` command line in them names subcommands and flags that
//!   `crmpulse … --help` lists, and every `CRMPULSE_*` variable they set is one the
//!   command reads;
//! - every configuration they hand a command (the TOML files they mount, with the
//!   `CRMPULSE__SECTION__KEY` variables they set) loads, and has what that command
//!   needs;
//! - every port they publish, expose, probe or scrape is the one `--listen` names, and
//!   the `--data-dir` of every pipeline is a volume that outlives the process;
//! - the systemd unit's own command line starts a server, and every probe path and
//!   health check of the artifacts passes against it.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use crmpulse::config::{AuthMode, Config};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_crmpulse");
const NOW: &str = "2026-11-20T12:00:00Z";
/// What the artifacts' secrets (`${VAR}` in compose, Secret references in Kubernetes)
/// stand for while their configuration is loaded: long enough for any of them.
const SECRET: &str = "placeholder-secret-0123456789abcdef0123456789";
/// The commands that serve HTTP on `--listen`.
const SERVERS: [&str; 4] = ["run", "demo", "serve", "ingest"];

fn read(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------------
// What the binary accepts, from its own help.

/// What `crmpulse SUBCOMMANDS.. --help` lists.
#[derive(Debug, Clone, Default)]
struct Usage {
    /// Long flags, each with whether it takes a value.
    flags: BTreeMap<String, bool>,
    subcommands: BTreeSet<String>,
    takes_arguments: bool,
    /// Environment variables it reads (`[env: NAME=]`).
    env: BTreeSet<String>,
}

static USAGES: LazyLock<Mutex<HashMap<Vec<String>, Usage>>> = LazyLock::new(Mutex::default);

fn usage(path: &[String]) -> Usage {
    if let Some(u) = USAGES.lock().unwrap().get(path) {
        return u.clone();
    }
    let out = Command::new(BIN)
        .args(path)
        .arg("--help")
        .env_remove("CRMPULSE_CONFIG")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "crmpulse {path:?} --help failed");
    let mut u = Usage::default();
    let mut section = "";
    for line in help.lines() {
        if matches!(line, "Commands:" | "Arguments:" | "Options:") {
            section = line;
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let words: Vec<&str> = line.split_whitespace().collect();
        // Entries start at column 2 (`  run  …`, `  -h, --help`) or 6 (`      --listen
        // <LISTEN>`); descriptions, wrapped or on their own lines, are indented more.
        match section {
            "Commands:" if indent == 2 && words[0] != "help" => {
                u.subcommands.insert(words[0].to_owned());
            }
            "Arguments:" if indent == 2 => u.takes_arguments = true,
            "Options:" if indent <= 6 && words.first().is_some_and(|w| w.starts_with('-')) => {
                if let Some(at) = words.iter().position(|w| w.starts_with("--")) {
                    let name = words[at].trim_start_matches("--").trim_end_matches(',');
                    let takes_value = words
                        .get(at + 1)
                        .is_some_and(|w| w.starts_with('<') || w.starts_with("[<"));
                    u.flags.insert(name.to_owned(), takes_value);
                }
            }
            _ => {}
        }
        for (at, _) in line.match_indices("[env: ") {
            let name = line[at + 6..].split(['=', ']']).next().unwrap();
            u.env.insert(name.to_owned());
        }
    }
    assert!(
        u.flags.contains_key("help"),
        "no options read from:\n{help}"
    );
    USAGES.lock().unwrap().insert(path.to_vec(), u.clone());
    u
}

/// A command line as clap reads it.
#[derive(Debug)]
struct Parsed {
    /// The subcommands, e.g. `["signing-keys", "list"]`.
    path: Vec<String>,
    /// Every flag given, with its value (empty for a switch).
    flags: BTreeMap<String, String>,
    arguments: Vec<String>,
}

impl Parsed {
    fn command(&self) -> &str {
        &self.path[0]
    }
}

/// Reads `argv` (the words after `crmpulse`) word by word against the help of the
/// command so far: a subcommand of it, one of its flags (with its value), or an
/// argument of a command that takes them. Anything else fails, naming `place`.
fn parse(place: &str, argv: &[String]) -> Parsed {
    let mut parsed = Parsed {
        path: Vec::new(),
        flags: BTreeMap::new(),
        arguments: Vec::new(),
    };
    let mut u = usage(&[]);
    let mut words = argv.iter();
    while let Some(word) = words.next() {
        let shown = || format!("crmpulse {}", parsed.path.join(" "));
        if let Some(flag) = word.strip_prefix("--") {
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (flag, None),
            };
            let Some(&takes_value) = u.flags.get(name) else {
                panic!(
                    "{place}: `{}` has no flag --{name} (flags: {:?})",
                    shown(),
                    u.flags.keys().collect::<Vec<_>>()
                );
            };
            let value = match (takes_value, inline) {
                (true, Some(v)) => v,
                (true, None) => words
                    .next()
                    .unwrap_or_else(|| panic!("{place}: --{name} needs a value"))
                    .clone(),
                (false, None) => String::new(),
                (false, Some(_)) => panic!("{place}: --{name} takes no value"),
            };
            parsed.flags.insert(name.to_owned(), value);
        } else if word.starts_with('-') {
            panic!("{place}: {word}: the artifacts use long flags only");
        } else if u.subcommands.contains(word) {
            parsed.path.push(word.clone());
            u = usage(&parsed.path);
        } else if u.takes_arguments && !parsed.path.is_empty() {
            parsed.arguments.push(word.clone());
        } else {
            panic!(
                "{place}: `{word}` is not a subcommand of `{}` (subcommands: {:?})",
                shown(),
                u.subcommands
            );
        }
    }
    assert!(
        !parsed.path.is_empty() && u.subcommands.is_empty(),
        "{place}: `crmpulse {}` names no complete subcommand",
        argv.join(" ")
    );
    parsed
}

// ---------------------------------------------------------------------------------
// What the artifacts run.

/// One `crmpulse` command line of an artifact, with what the artifact gives it.
#[derive(Debug, Clone, Default)]
struct Launch {
    /// Where it is written, for messages: `infra/compose/compose.yaml: serve-1`.
    place: String,
    /// The words after `crmpulse`.
    argv: Vec<String>,
    /// The environment the artifact sets (secrets as [`SECRET`]).
    env: BTreeMap<String, String>,
    /// The files the artifact puts where crmpulse reads them: path there → (where the
    /// text comes from in the repository, the text).
    files: BTreeMap<String, (String, String)>,
    /// Mount points of storage that outlives the process.
    volumes: BTreeSet<String>,
    /// Inside a container: only a non-loopback address is reachable from outside.
    container: bool,
}

impl Launch {
    fn parse(&self) -> Parsed {
        parse(&self.place, &self.argv)
    }

    /// Where a server command listens. The artifacts name it: the default is
    /// loopback, which a published container port cannot reach.
    fn listen(&self) -> Option<SocketAddr> {
        let parsed = self.parse();
        if !SERVERS.contains(&parsed.command()) {
            return None;
        }
        let addr = parsed
            .flags
            .get("listen")
            .unwrap_or_else(|| panic!("{}: no --listen", self.place));
        let addr: SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("{}: --listen {addr}: {e}", self.place));
        assert!(
            !self.container || addr.ip().is_unspecified(),
            "{}: listens on {addr} inside a container, where only the container reaches it",
            self.place
        );
        Some(addr)
    }

    /// The configuration the command loads: `--config` (or `CRMPULSE_CONFIG`), which
    /// must be a file the artifact provides, under its `CRMPULSE__` variables.
    fn config(&self, scratch: &Path) -> Config {
        let parsed = self.parse();
        let path = parsed
            .flags
            .get("config")
            .or(self.env.get("CRMPULSE_CONFIG"));
        let file = path.map(|path| {
            let (_, text) = self.files.get(path).unwrap_or_else(|| {
                panic!(
                    "{}: --config {path} is not a file the artifact provides",
                    self.place
                )
            });
            let file = scratch.join(format!("{}.toml", self.place.replace(['/', ' ', ':'], "_")));
            std::fs::write(&file, text).unwrap();
            file
        });
        load_config(file.as_deref(), &self.env).unwrap_or_else(|e| panic!("{}: {e}", self.place))
    }
}

/// `crmpulse::config::load`, which every command runs first, with `env`'s
/// `CRMPULSE__SECTION__KEY` variables set: inside a figment Jail, which holds a
/// process-wide lock and puts the environment back afterwards.
// The closure's error type is figment's own, fixed by `Jail::expect_with`.
#[allow(clippy::result_large_err)]
fn load_config(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Config, String> {
    let mut loaded = None;
    figment::Jail::expect_with(|jail| {
        for (name, value) in env.iter().filter(|(n, _)| n.starts_with("CRMPULSE__")) {
            jail.set_env(name, value);
        }
        loaded = Some(crmpulse::config::load(file).map_err(|e| format!("{e:#}")));
        Ok(())
    });
    loaded.unwrap()
}

/// A compose value with its `${VAR}` interpolations resolved: `${VAR:-default}` to
/// the default, any other (the secrets from `.env`) to [`SECRET`].
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('}').expect("a closed ${...}") + at;
        let inner = &rest[at + 2..end];
        match inner.split_once(":-") {
            Some((_, default)) => out.push_str(default),
            None => out.push_str(SECRET),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list expected, found {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// The `crmpulse` command lines of a shell script (a compose `sh -c` command): the
/// words after each `crmpulse` up to the end of that command.
fn shell_commands(script: &str) -> Vec<Vec<String>> {
    assert!(
        !script.contains(['"', '\'', '$', '`', '\\']),
        "quoting and expansions are not read here: {script}"
    );
    let mut commands = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for word in script.split_whitespace() {
        let (word, ends) = match word.strip_suffix(';') {
            Some(w) => (w, true),
            None => (word, false),
        };
        if let Some(argv) = current.as_mut() {
            if matches!(word, "&&" | "||" | "|" | ">" | ">>" | "<" | "do" | "then") {
                commands.extend(current.take());
                continue;
            }
            argv.push(word.to_owned());
        } else if word == "crmpulse" {
            current = Some(Vec::new());
        }
        if ends {
            commands.extend(current.take());
        }
    }
    commands.extend(current);
    commands
}

/// An image is crmpulse's when its name (after any registry path) is.
fn is_crmpulse(image: &str) -> bool {
    image.rsplit('/').next().unwrap().starts_with("crmpulse:")
}

/// The parts of `infra/docker/Dockerfile`'s final stage that say how it runs.
#[derive(Debug, Default)]
struct Image {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
    expose: Vec<u16>,
    volumes: BTreeSet<String>,
}

fn image() -> Image {
    let text = read("infra/docker/Dockerfile");
    // Continuation lines joined and comment lines dropped, as Docker reads them.
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let exec_form = |s: &str| -> Vec<String> {
        serde_json::from_str(s.trim())
            .unwrap_or_else(|e| panic!("Dockerfile: {s}: not in exec form (a JSON list): {e}"))
    };
    let last_stage = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .expect("a FROM");
    let mut image = Image::default();
    for instruction in &instructions[last_stage..] {
        let (op, rest) = instruction.split_once(' ').unwrap_or((instruction, ""));
        match op {
            "ENTRYPOINT" => image.entrypoint = exec_form(rest),
            "CMD" => image.cmd = exec_form(rest),
            "EXPOSE" => image.expose.extend(
                rest.split_whitespace()
                    .map(|p| p.trim_end_matches("/tcp").parse::<u16>().unwrap()),
            ),
            "VOLUME" => image
                .volumes
                .extend(rest.split_whitespace().map(str::to_owned)),
            "HEALTHCHECK" => {
                let (_, cmd) = rest.split_once("CMD ").expect("HEALTHCHECK [options] CMD");
                image.healthcheck = exec_form(cmd);
            }
            _ => {}
        }
    }
    image
}

fn image_launch(image: &Image) -> Launch {
    assert_eq!(image.entrypoint, ["crmpulse"], "Dockerfile: ENTRYPOINT");
    Launch {
        place: "infra/docker/Dockerfile: CMD".into(),
        argv: image.cmd.clone(),
        volumes: image.volumes.clone(),
        container: true,
        ..Launch::default()
    }
}

fn compose() -> Value {
    let docs = yaml::documents(
        "infra/compose/compose.yaml",
        &read("infra/compose/compose.yaml"),
    );
    assert_eq!(docs.len(), 1);
    docs.into_iter().next().unwrap()
}

/// The crmpulse services of the compose file: each with its definition and the
/// command lines it runs (a shell script may run several).
fn compose_services(compose: &Value) -> Vec<(String, Value, Vec<Launch>)> {
    let services = compose["services"].as_object().expect("services");
    let mut out = Vec::new();
    for (name, service) in services {
        if !service["image"].as_str().is_some_and(is_crmpulse) {
            continue;
        }
        let place = format!("infra/compose/compose.yaml: {name}");
        let mut base = Launch {
            place: place.clone(),
            container: true,
            ..Launch::default()
        };
        if let Some(env) = service.get("environment") {
            let env = env
                .as_object()
                .unwrap_or_else(|| panic!("{place}: environment as a mapping"));
            for (k, v) in env {
                base.env.insert(k.clone(), interpolate(v.as_str().unwrap()));
            }
        }
        for volume in service.get("volumes").map(strings).unwrap_or_default() {
            let mut parts = volume.split(':');
            let (source, target) = (parts.next().unwrap(), parts.next().unwrap());
            if source.starts_with('.') || source.starts_with('/') {
                let path = format!("infra/compose/{source}");
                let path = path.replace("/./", "/");
                base.files
                    .insert(target.to_owned(), (path.clone(), read(&path)));
            } else {
                base.volumes.insert(target.to_owned());
            }
        }
        let command = service.get("command").map_or_else(|| image().cmd, strings);
        let argvs = match service.get("entrypoint").map(strings) {
            None => vec![command],
            Some(e) if e == ["/bin/sh", "-c"] => {
                assert_eq!(command.len(), 1, "{place}: one script");
                shell_commands(&command[0])
            }
            Some(e) => panic!("{place}: entrypoint {e:?} is not read here"),
        };
        assert!(!argvs.is_empty(), "{place}: runs no crmpulse command");
        let launches = argvs
            .into_iter()
            .map(|argv| Launch {
                argv,
                ..base.clone()
            })
            .collect();
        out.push((name.clone(), service.clone(), launches));
    }
    out
}

/// Every YAML document under `infra/k8s/`.
fn manifests() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in infra/k8s");
    files
        .iter()
        .flat_map(|file| {
            let name = format!("infra/k8s/{}", file.file_name().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(file).unwrap();
            yaml::documents(&name, &text)
                .into_iter()
                .map(move |doc| (name.clone(), doc))
        })
        .collect()
}

/// The manifests' workloads (`spec.template.spec`): place, pod labels, pod spec and
/// the volumes a StatefulSet claims.
fn workloads(manifests: &[(String, Value)]) -> Vec<(String, Value, Value, BTreeSet<String>)> {
    manifests
        .iter()
        .filter(|(_, doc)| doc["spec"]["template"]["spec"].is_object())
        .map(|(file, doc)| {
            let place = format!(
                "{file}: {} {}",
                doc["kind"].as_str().unwrap(),
                doc["metadata"]["name"].as_str().unwrap()
            );
            let claims = doc["spec"]
                .get("volumeClaimTemplates")
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .map(|c| c["metadata"]["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            (
                place,
                doc["spec"]["template"]["metadata"]["labels"].clone(),
                doc["spec"]["template"]["spec"].clone(),
                claims,
            )
        })
        .collect()
}

/// The crmpulse containers of the manifests, each with its command line and what the
/// pod gives it: the ConfigMap files it mounts, persistent mounts, its environment.
fn k8s_launches(manifests: &[(String, Value)]) -> Vec<(Launch, Value)> {
    let config_maps: HashMap<&str, &Value> = manifests
        .iter()
        .filter(|(_, d)| d["kind"] == "ConfigMap")
        .map(|(_, d)| (d["metadata"]["name"].as_str().unwrap(), &d["data"]))
        .collect();
    let mut out = Vec::new();
    for (place, _, pod, claims) in workloads(manifests) {
        let volumes: HashMap<&str, &Value> = pod
            .get("volumes")
            .and_then(Value::as_array)
            .map(|v| v.iter().map(|v| (v["name"].as_str().unwrap(), v)).collect())
            .unwrap_or_default();
        for container in pod["containers"].as_array().unwrap() {
            if !container["image"].as_str().is_some_and(is_crmpulse) {
                continue;
            }
            let place = format!("{place} container {}", container["name"].as_str().unwrap());
            assert!(
                container.get("command").is_none(),
                "{place}: the image's entrypoint is crmpulse; give args"
            );
            let mut launch = Launch {
                place: place.clone(),
                argv: strings(&container["args"]),
                container: true,
                ..Launch::default()
            };
            for var in container
                .get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let value = var.get("value").and_then(Value::as_str).unwrap_or(SECRET);
                launch
                    .env
                    .insert(var["name"].as_str().unwrap().to_owned(), value.to_owned());
            }
            for mount in container
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (name, at) = (
                    mount["name"].as_str().unwrap(),
                    mount["mountPath"].as_str().unwrap(),
                );
                if claims.contains(name)
                    || volumes
                        .get(name)
                        .is_some_and(|v| v.get("persistentVolumeClaim").is_some())
                {
                    launch.volumes.insert(at.to_owned());
                } else if let Some(map) = volumes.get(name).and_then(|v| v.get("configMap")) {
                    let map_name = map["name"].as_str().unwrap();
                    let data = config_maps
                        .get(map_name)
                        .unwrap_or_else(|| panic!("{place}: no ConfigMap {map_name}"));
                    for (key, text) in data.as_object().unwrap() {
                        let source = format!("ConfigMap {map_name} key {key}");
                        launch.files.insert(
                            format!("{at}/{key}"),
                            (source, text.as_str().unwrap().to_owned()),
                        );
                    }
                }
            }
            out.push((launch, container.clone()));
        }
    }
    out
}

/// `infra/systemd/crmpulse.service`: every `Key=value`, in order.
fn unit() -> BTreeMap<String, Vec<String>> {
    let mut unit: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in read("infra/systemd/crmpulse.service")
        .lines()
        .map(str::trim)
    {
        if line.is_empty() || line.starts_with(['#', ';', '[']) {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("unit: {line}"));
        unit.entry(key.to_owned())
            .or_default()
            .push(value.to_owned());
    }
    unit
}

/// The unit's `ExecStart`, with what it is given: its `EnvironmentFile` and the files
/// of `infra/systemd/`, which the unit's install steps put in `/etc/crmpulse/`.
fn systemd_launch() -> Launch {
    let unit = unit();
    let place = "infra/systemd/crmpulse.service: ExecStart".to_owned();
    let [exec] = unit["ExecStart"].as_slice() else {
        panic!("{place}: one ExecStart");
    };
    assert!(
        !exec.contains(['"', '\'', '$', '%']),
        "{place}: quoting and specifiers are not read here"
    );
    let mut words = exec.split_whitespace().map(str::to_owned);
    let binary = words.next().unwrap();
    assert!(
        binary.starts_with('/') && binary.ends_with("/crmpulse"),
        "{place}: {binary}"
    );
    let mut launch = Launch {
        place,
        argv: words.collect(),
        ..Launch::default()
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/systemd");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name != "crmpulse.service" {
            let source = format!("infra/systemd/{name}");
            launch.files.insert(
                format!("/etc/crmpulse/{name}"),
                (source.clone(), read(&source)),
            );
        }
    }
    for file in unit.get("EnvironmentFile").into_iter().flatten() {
        let path = file.trim_start_matches('-');
        let (_, text) = launch
            .files
            .get(path)
            .unwrap_or_else(|| panic!("EnvironmentFile {path} is not in infra/systemd"));
        let vars: Vec<(String, String)> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("{path}: {l}"));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        launch.env.extend(vars);
    }
    for state in unit.get("StateDirectory").into_iter().flatten() {
        launch.volumes.insert(format!("/var/lib/{state}"));
    }
    launch
}

/// Every crmpulse command line of every artifact.
fn launches() -> Vec<Launch> {
    let mut all = vec![image_launch(&image())];
    for (_, _, launches) in compose_services(&compose()) {
        all.extend(launches);
    }
    all.extend(k8s_launches(&manifests()).into_iter().map(|(l, _)| l));
    all.push(systemd_launch());
    all
}

/// A health check or probe of an artifact.
#[derive(Debug)]
enum Probe {
    /// An HTTP GET of a path (a Kubernetes probe).
    Get { place: String, path: String },
    /// A `crmpulse` command run beside the server (a container health check).
    Command { place: String, argv: Vec<String> },
}

fn probes() -> Vec<Probe> {
    let mut probes = vec![Probe::Command {
        place: "infra/docker/Dockerfile: HEALTHCHECK".into(),
        argv: health_command("infra/docker/Dockerfile: HEALTHCHECK", &image().healthcheck),
    }];
    for (name, service, _) in compose_services(&compose()) {
        if let Some(test) = service["healthcheck"].get("test") {
            let place = format!("infra/compose/compose.yaml: {name} healthcheck");
            let test = strings(test);
            assert_eq!(test[0], "CMD", "{place}: exec form");
            probes.push(Probe::Command {
                argv: health_command(&place, &test[1..]),
                place,
            });
        }
    }
    for (launch, container) in k8s_launches(&manifests()) {
        for kind in ["startupProbe", "livenessProbe", "readinessProbe"] {
            if let Some(probe) = container.get(kind) {
                let path = probe["httpGet"]["path"].as_str();
                let path =
                    path.unwrap_or_else(|| panic!("{}: {kind} is not an httpGet", launch.place));
                probes.push(Probe::Get {
                    place: format!("{} {kind}", launch.place),
                    path: path.to_owned(),
                });
            }
        }
    }
    probes
}

/// A health check's words after `crmpulse`.
fn health_command(place: &str, words: &[String]) -> Vec<String> {
    assert_eq!(
        words.first().map(String::as_str),
        Some("crmpulse"),
        "{place}"
    );
    words[1..].to_vec()
}

/// The port a `crmpulse check` health check asks, on loopback: it runs inside the
/// container, beside the server.
fn health_port(place: &str, argv: &[String]) -> u16 {
    let parsed = parse(place, argv);
    assert_eq!(parsed.command(), "check", "{place}");
    let url = url::Url::parse(&parsed.arguments[0]).unwrap();
    assert!(
        matches!(url.host_str(), Some("127.0.0.1" | "localhost")),
        "{place}: a health check runs in the container: it asks loopback, not {url}"
    );
    url.port_or_known_default().unwrap()
}

/// The port a Kubernetes probe or Service names: a number, or a container port's name.
fn resolve_port(place: &str, port: &Value, ports: &[(String, u16)]) -> u16 {
    let port = port.as_str().unwrap();
    port.parse().unwrap_or_else(|_| {
        ports
            .iter()
            .find(|(name, _)| name == port)
            .unwrap_or_else(|| panic!("{place}: no container port named {port}"))
            .1
    })
}

// ---------------------------------------------------------------------------------

#[test]
fn every_command_line_uses_subcommands_and_flags_the_binary_has() {
    let launches = launches();
    // Each artifact is read: one the reader stopped finding would pass unchecked.
    for artifact in [
        "infra/docker/",
        "infra/compose/",
        "infra/k8s/",
        "infra/systemd/",
    ] {
        assert!(
            launches.iter().any(|l| l.place.starts_with(artifact)),
            "no crmpulse command line found in {artifact}"
        );
    }
    for launch in &launches {
        let parsed = launch.parse();
        let reads = usage(&parsed.path).env;
        for name in launch.env.keys() {
            if name.starts_with("CRMPULSE_") && !name.starts_with("CRMPULSE__") {
                assert!(
                    reads.contains(name),
                    "{}: `crmpulse {}` reads no variable {name} (it reads {reads:?})",
                    launch.place,
                    parsed.path.join(" ")
                );
            }
        }
    }
    for probe in probes() {
        if let Probe::Command { place, argv } = probe {
            parse(&place, &argv);
        }
    }
}

#[test]
fn a_misspelt_flag_or_subcommand_is_refused() {
    // The parser above is what the artifacts are held to, so it must refuse.
    let bad = |argv: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        std::panic::catch_unwind(|| parse("test", &argv)).is_err()
    };
    assert!(!bad(&[
        "--config",
        "c.toml",
        "run",
        "--listen",
        "0.0.0.0:8080"
    ]));
    assert!(!bad(&["check", "--ready", "http://127.0.0.1:8080"]));
    assert!(!bad(&["signing-keys", "retire", "k1"]));
    assert!(bad(&["run", "--listn", "0.0.0.0:8080"]));
    assert!(bad(&["serv", "--listen", "0.0.0.0:8080"]));
    assert!(bad(&["serve", "--data-dir", "/var/lib/crmpulse"]));
    assert!(bad(&["run", "--listen"]));
    assert!(bad(&["signing-keys"]));
}

#[test]
fn every_configuration_the_artifacts_give_crmpulse_loads() {
    let scratch = tempfile::tempdir().unwrap();
    let mut used = BTreeSet::new();
    for launch in launches() {
        let config = launch.config(scratch.path());
        let parsed = launch.parse();
        if let Some(path) = parsed
            .flags
            .get("config")
            .or(launch.env.get("CRMPULSE_CONFIG"))
        {
            used.insert(launch.files[path].0.clone());
        }
        let command = parsed.command();
        if matches!(
            command,
            "serve" | "ingest" | "tail-metrics" | "kafka-topics"
        ) {
            assert!(
                config.kafka.is_some(),
                "{}: `crmpulse {command}` needs [kafka]",
                launch.place
            );
        }
        if matches!(command, "serve" | "ingest") {
            assert!(
                config.auth.mode == AuthMode::Rs256 || !config.auth.hs256_secret.is_empty(),
                "{}: replicas refuse to start without a shared [auth] hs256_secret",
                launch.place
            );
        }
    }
    // Every TOML file of the artifacts is some command's configuration, so none is
    // left unchecked.
    for dir in ["infra/compose", "infra/systemd"] {
        for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") {
                assert!(
                    used.contains(&format!("{dir}/{name}")),
                    "{dir}/{name} is no command's --config"
                );
            }
        }
    }
}

#[test]
fn ports_agree_with_the_address_crmpulse_listens_on() {
    // The image: EXPOSE and HEALTHCHECK against CMD.
    let image = image();
    let image_port = image_launch(&image)
        .listen()
        .expect("CMD runs a server")
        .port();
    assert_eq!(
        image.expose,
        [image_port],
        "Dockerfile: EXPOSE against CMD's --listen"
    );
    let health = health_command("Dockerfile: HEALTHCHECK", &image.healthcheck);
    let health = health_port("infra/docker/Dockerfile: HEALTHCHECK", &health);
    assert_eq!(
        health, image_port,
        "Dockerfile: HEALTHCHECK against CMD's --listen"
    );

    // Compose: published ports, health checks (the image's unless overridden), what
    // Prometheus scrapes, and the services crmpulse's configuration names.
    let compose = compose();
    let scratch = tempfile::tempdir().unwrap();
    let mut servers = BTreeSet::new();
    for (name, service, launches) in compose_services(&compose) {
        for launch in &launches {
            let config = launch.config(scratch.path());
            let kafka = config
                .kafka
                .iter()
                .flat_map(|k| k.brokers.split(',').map(str::to_owned));
            let clickhouse = config.clickhouse.enabled().then(|| {
                let url = url::Url::parse(&config.clickhouse.url).unwrap();
                format!(
                    "{}:{}",
                    url.host_str().unwrap(),
                    url.port_or_known_default().unwrap()
                )
            });
            for address in kafka.chain(clickhouse) {
                let (host, port) = address.rsplit_once(':').unwrap();
                let declared: Vec<String> = ["expose", "ports"]
                    .iter()
                    .filter_map(|k| compose["services"][host].get(*k))
                    .flat_map(strings)
                    .map(|p| p.rsplit(':').next().unwrap().to_owned())
                    .collect();
                assert!(
                    declared.iter().any(|p| p == port),
                    "{}: {address} is not a port service {host} declares ({declared:?})",
                    launch.place
                );
            }
            let Some(addr) = launch.listen() else {
                continue;
            };
            let place = &launch.place;
            for published in service.get("ports").map(strings).unwrap_or_default() {
                let inside = published.rsplit(':').next().unwrap();
                assert_eq!(
                    inside,
                    addr.port().to_string(),
                    "{place}: ports {published} against --listen {addr}"
                );
            }
            match service["healthcheck"].get("test") {
                Some(test) => {
                    let argv = health_command(place, &strings(test)[1..]);
                    assert_eq!(
                        health_port(place, &argv),
                        addr.port(),
                        "{place}: healthcheck against --listen"
                    );
                }
                None if service["healthcheck"]["disable"] == "true" => {}
                None => assert_eq!(
                    image_port,
                    addr.port(),
                    "{place}: inherits the image's HEALTHCHECK, which asks port {image_port}"
                ),
            }
            servers.insert(format!("{name}:{}", addr.port()));
        }
    }
    let prometheus = yaml::documents(
        "infra/compose/prometheus.yml",
        &read("infra/compose/prometheus.yml"),
    );
    let job = prometheus[0]["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_name"] == "crmpulse")
        .expect("a scrape job named crmpulse, as the alert rules select");
    let scraped: BTreeSet<String> = job["static_configs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| strings(&c["targets"]))
        .collect();
    assert_eq!(
        scraped, servers,
        "prometheus.yml scrapes every crmpulse server on its port"
    );

    // Kubernetes: container ports, probes, and the Services' target ports.
    let manifests = manifests();
    let mut pods = Vec::new();
    for (launch, container) in k8s_launches(&manifests) {
        let Some(addr) = launch.listen() else {
            continue;
        };
        let place = &launch.place;
        let ports: Vec<(String, u16)> = container["ports"]
            .as_array()
            .unwrap_or_else(|| panic!("{place}: no ports"))
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or("").to_owned(),
                    p["containerPort"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        for (_, port) in &ports {
            assert_eq!(
                *port,
                addr.port(),
                "{place}: containerPort against --listen {addr}"
            );
        }
        for kind in ["startupProbe", "livenessProbe", "readinessProbe"] {
            if let Some(probe) = container.get(kind) {
                let port = resolve_port(place, &probe["httpGet"]["port"], &ports);
                assert_eq!(
                    port,
                    addr.port(),
                    "{place}: {kind} port against --listen {addr}"
                );
            }
        }
        pods.push((place.clone(), ports));
    }
    let labels: Vec<(String, Value)> = workloads(&manifests)
        .into_iter()
        .map(|(p, l, _, _)| (p, l))
        .collect();
    for (file, service) in manifests.iter().filter(|(_, d)| d["kind"] == "Service") {
        let name = service["metadata"]["name"].as_str().unwrap();
        let selector = service["spec"]["selector"].as_object().unwrap();
        let (workload, _) = labels
            .iter()
            .find(|(_, l)| selector.iter().all(|(k, v)| l[k] == *v))
            .unwrap_or_else(|| panic!("{file}: Service {name} selects no workload"));
        let (_, ports) = pods
            .iter()
            .find(|(place, _)| place.starts_with(&format!("{workload} container ")))
            .unwrap_or_else(|| {
                panic!("{file}: Service {name} selects {workload}, which serves no HTTP")
            });
        for port in service["spec"]["ports"].as_array().unwrap() {
            let target = resolve_port(
                &format!("{file}: Service {name}"),
                &port["targetPort"],
                ports,
            );
            assert_eq!(
                target, ports[0].1,
                "{file}: Service {name} targetPort against {workload}'s --listen"
            );
        }
    }
}

#[test]
fn every_pipeline_keeps_its_data_dir_on_a_volume() {
    for launch in launches() {
        let parsed = launch.parse();
        if !matches!(parsed.command(), "run" | "demo") {
            continue;
        }
        // The default, `crmpulse-data`, is relative to wherever the process starts.
        let dir = parsed
            .flags
            .get("data-dir")
            .unwrap_or_else(|| panic!("{}: no --data-dir", launch.place));
        assert!(
            launch.volumes.contains(dir),
            "{}: --data-dir {dir} is not on a volume ({:?}): the event log would not outlive the process",
            launch.place,
            launch.volumes
        );
    }
}

#[test]
fn the_unit_starts_a_server_that_passes_every_probe_and_health_check() {
    let launch = systemd_launch();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    // The unit's command line on a free port and a temporary data dir, with the
    // repository's copy of the configuration file it names.
    let mut argv = launch.argv.clone();
    let mut replaced = BTreeSet::new();
    for i in 1..argv.len() {
        let value = match argv[i - 1].as_str() {
            "--listen" => format!("127.0.0.1:{port}"),
            "--data-dir" => dir.path().join("data").display().to_string(),
            "--config" => {
                let file = dir.path().join("crmpulse.toml");
                std::fs::write(&file, &launch.files[&argv[i]].1).unwrap();
                file.display().to_string()
            }
            _ => continue,
        };
        replaced.insert(argv[i - 1].clone());
        argv[i] = value;
    }
    assert!(
        replaced.contains("--listen") && replaced.contains("--data-dir"),
        "{argv:?}"
    );
    let log_file = dir.path().join("stderr.log");
    let mut server = common::Killed(
        Command::new(BIN)
            .args(["--now", NOW])
            .args(&argv)
            .envs(&launch.env)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_file).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(&log_file).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("the unit's crmpulse exited ({status}):\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "the unit's crmpulse did not start:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let probes = probes();
    assert!(
        probes.iter().any(|p| matches!(p, Probe::Get { .. })),
        "no Kubernetes probe found"
    );
    let base = format!("http://127.0.0.1:{port}");
    // Any other path without a dot answers 200 with the dashboard's page (client-side
    // routes), so a probe of a misspelt path would pass in Kubernetes too, always: a
    // probe must answer something else than that page.
    let get = |path: &str| {
        reqwest::blocking::get(format!("{base}{path}")).and_then(|r| Ok((r.status(), r.text()?)))
    };
    let (_, dashboard) = get("/no-such-route").unwrap();
    // Readiness turns true once the (empty) log is read; each probe is retried until
    // it passes, as the orchestrator does, within a deadline.
    for probe in probes {
        let deadline = Instant::now() + Duration::from_secs(30);
        match probe {
            Probe::Get { place, path } => loop {
                let answer = get(&path);
                match &answer {
                    Ok((_, body)) if *body == dashboard => {
                        panic!(
                            "{place}: GET {path} answers the dashboard's page: not a route of crmpulse"
                        )
                    }
                    Ok((s, _)) if *s == reqwest::StatusCode::NOT_FOUND => {
                        panic!("{place}: GET {path} is 404: not a route of crmpulse")
                    }
                    Ok((s, _)) if s.is_success() => break,
                    _ if Instant::now() > deadline => {
                        panic!("{place}: GET {path} answered {answer:?}")
                    }
                    _ => std::thread::sleep(Duration::from_millis(100)),
                }
            },
            Probe::Command { place, argv } => {
                // The health check as written, pointed at this server's port.
                let at = health_port(&place, &argv);
                let argv: Vec<String> = argv
                    .iter()
                    .map(|w| {
                        if w.starts_with("http") {
                            w.replacen(&format!(":{at}"), &format!(":{port}"), 1)
                        } else {
                            w.clone()
                        }
                    })
                    .collect();
                loop {
                    let out = Command::new(BIN)
                        .args(&argv)
                        .env_remove("CRMPULSE_CONFIG")
                        .env_remove("CRMPULSE_TOKEN")
                        .output()
                        .unwrap();
                    if out.status.success() {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{place}: `crmpulse {}` failed: {}{}",
                        argv.join(" "),
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "crmpulse exited:\n{}",
        log()
    );
}

/// The compose file, the manifests and Prometheus's configuration as JSON values, one
/// per YAML document (`---`), with every scalar a string (YAML `8080` and `"8080"` are
/// the same port to the checks above).
mod yaml {
    use serde::Deserialize as _;
    use serde_json::Value;

    pub fn documents(file: &str, text: &str) -> Vec<Value> {
        serde_norway::Deserializer::from_str(text)
            .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}")))
            .filter(|doc| !doc.is_null())
            .map(to_strings)
            .collect()
    }

    /// Numbers and booleans as the strings they were written as.
    fn to_strings(v: Value) -> Value {
        match v {
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Array(a) => Value::Array(a.into_iter().map(to_strings).collect()),
            Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, to_strings(v))).collect())
            }
            v => v,
        }
    }
}
