//! A small client for ClickHouse's HTTP interface: statements, text queries and
//! `INSERT … FORMAT JSONEachRow` bodies.
//!
//! JSONEachRow over HTTP is understood by every server from Debian's 18.16 to current
//! releases, and lets one generic row encoder feed every rollup table (`rollup.rs`)
//! without a Rust struct per table. The database and the statement travel as URL
//! parameters, which all versions accept; the user and password as HTTP basic
//! authentication (also accepted by 18.16), so the password is never part of a URL
//! that an error or a log line could print (reqwest marks the header sensitive).

use std::time::Duration;

use schemas::Secret;

use super::config::ClickHouseConfig;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("ClickHouse unreachable")]
    Transport(#[source] reqwest::Error),
    /// The server answered with an error.
    #[error("ClickHouse answered {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// First line of the server's message.
        message: String,
    },
}

/// A blocking HTTP client bound to one server and database.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::blocking::Client,
    url: String,
    database: String,
    user: String,
    password: Secret,
}

impl Client {
    /// A client for `config`'s server and database.
    ///
    /// # Panics
    /// If the TLS-free HTTP client cannot be built (it always can).
    pub fn new(config: &ClickHouseConfig) -> Self {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms.max(100)))
            .build()
            .expect("a plain HTTP client always builds");
        Self {
            http,
            url: config.url.trim_end_matches('/').to_owned(),
            database: config.database.clone(),
            user: config.user.clone(),
            password: config.password.clone(),
        }
    }

    /// The configured database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs one statement in the configured database and returns the response body.
    ///
    /// # Errors
    /// [`ClientError`] on transport failure or a server error.
    pub fn query(&self, sql: &str) -> Result<String, ClientError> {
        self.post(Some(&self.database), None, sql.to_owned())
    }

    /// Runs one statement without selecting a database (`CREATE DATABASE`).
    ///
    /// # Errors
    /// [`ClientError`] on transport failure or a server error.
    pub fn query_server(&self, sql: &str) -> Result<String, ClientError> {
        self.post(None, None, sql.to_owned())
    }

    /// Inserts newline-separated JSON objects into `table`.
    ///
    /// # Errors
    /// [`ClientError`] on transport failure or a server error; nothing is committed then
    /// (one HTTP insert is one block on the server side).
    pub fn insert_json_rows(&self, table: &str, rows: String) -> Result<(), ClientError> {
        let insert = format!("INSERT INTO {table} FORMAT JSONEachRow");
        self.post(Some(&self.database), Some(&insert), rows)
            .map(|_| ())
    }

    fn post(
        &self,
        database: Option<&str>,
        query: Option<&str>,
        body: String,
    ) -> Result<String, ClientError> {
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(db) = database {
            params.push(("database", db));
        }
        if let Some(q) = query {
            params.push(("query", q));
        }
        let res = self
            .http
            .post(format!("{}/", self.url))
            .query(&params)
            .basic_auth(
                &self.user,
                (!self.password.is_empty()).then(|| self.password.expose()),
            )
            .body(body)
            .send()
            .map_err(ClientError::Transport)?;
        let status = res.status();
        let text = res.text().map_err(ClientError::Transport)?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(ClientError::Server {
                status: status.as_u16(),
                message: text.lines().next().unwrap_or_default().to_owned(),
            })
        }
    }
}
