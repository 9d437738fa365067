//! Versioned schema migrations: the files `infra/clickhouse/NNNN_name.sql`, compiled
//! into the binary, applied in order and recorded in `schema_migrations`.
//!
//! Invariants: a migration is recorded only after all its statements succeeded, and
//! every statement is written to be re-runnable (`IF NOT EXISTS`), so a run interrupted
//! half-way is finished by the next one. An applied migration whose file has changed
//! since is refused: migrations are append-only, a change goes into a new file.

use super::client::{Client, ClientError};

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The `NNNN` prefix.
    pub version: u32,
    /// The rest of the file name, without `.sql`.
    pub name: &'static str,
    /// The SQL text.
    pub sql: &'static str,
}

/// Every migration, in order. New ones go at the end, with the next number.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "raw_events",
        sql: include_str!("../../../../infra/clickhouse/0001_raw_events.sql"),
    },
    Migration {
        version: 2,
        name: "rollups",
        sql: include_str!("../../../../infra/clickhouse/0002_rollups.sql"),
    },
];

/// A migration run that failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A request failed.
    #[error("migration {version:04} failed")]
    Statement {
        /// The migration.
        version: u32,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// Bootstrapping (database, migrations table) or reading the applied set failed.
    #[error("reading the applied migrations failed")]
    Bootstrap(#[source] ClientError),
    /// An applied migration's file changed afterwards.
    #[error(
        "migration {version:04} was applied with checksum {applied} but the file now has {current}; add a new migration instead of editing an applied one"
    )]
    Changed {
        /// The migration.
        version: u32,
        /// Checksum recorded when it was applied.
        applied: String,
        /// Checksum of the file now.
        current: String,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// Versions applied by this run.
    pub applied: Vec<u32>,
    /// Versions found already applied.
    pub already: Vec<u32>,
}

/// Creates the database and the migrations table if needed, then applies every
/// migration not yet recorded.
///
/// # Errors
/// [`MigrateError`]; migrations before the failing one stay applied and recorded.
pub fn migrate(client: &Client) -> Result<MigrateReport, MigrateError> {
    client
        .query_server(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            client.database()
        ))
        .map_err(MigrateError::Bootstrap)?;
    client
        .query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, \
             checksum String, applied_at DateTime('UTC')) ENGINE = MergeTree() ORDER BY version",
        )
        .map_err(MigrateError::Bootstrap)?;
    let applied = client
        .query("SELECT version, any(checksum) FROM schema_migrations GROUP BY version FORMAT TabSeparated")
        .map_err(MigrateError::Bootstrap)?;
    let applied: Vec<(u32, String)> = applied
        .lines()
        .filter_map(|l| {
            let (v, c) = l.split_once('\t')?;
            Some((v.parse().ok()?, c.to_owned()))
        })
        .collect();
    let mut report = MigrateReport::default();
    for m in MIGRATIONS {
        let current = checksum(m.sql);
        if let Some((_, recorded)) = applied.iter().find(|(v, _)| *v == m.version) {
            if *recorded != current {
                return Err(MigrateError::Changed {
                    version: m.version,
                    applied: recorded.clone(),
                    current,
                });
            }
            report.already.push(m.version);
            continue;
        }
        for statement in statements(m.sql) {
            client
                .query(&statement)
                .map_err(|source| MigrateError::Statement {
                    version: m.version,
                    source,
                })?;
        }
        client
            .query(&format!(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ({}, '{}', '{}', now())",
                m.version, m.name, current
            ))
            .map_err(|source| MigrateError::Statement {
                version: m.version,
                source,
            })?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "ClickHouse migration applied"
        );
        report.applied.push(m.version);
    }
    Ok(report)
}

/// The statements of a migration file: `--` comment lines dropped (they may contain
/// `;`), then split on `;`. Migration files keep string literals free of `;`.
pub fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// FNV-1a 64 of the file, hex: detects an edited migration, no cryptography needed.
pub fn checksum(sql: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_split_into_create_statements_and_are_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            let st = statements(m.sql);
            assert!(!st.is_empty());
            for s in st {
                assert!(s.starts_with("CREATE TABLE IF NOT EXISTS"), "{s}");
            }
        }
        assert_eq!(statements(MIGRATIONS[1].sql).len(), 15);
    }

    #[test]
    fn comments_with_semicolons_do_not_split() {
        let st = statements("-- a; b\nCREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = Log;\n");
        assert_eq!(st, ["CREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = Log"]);
        assert_ne!(checksum("a"), checksum("b"));
    }
}
