//! No configuration struct prints a secret: every one is formatted with `{:?}` and
//! `{:#?}` from a configuration that sets every secret crmpulse reads, and none of
//! the values may appear (`tests/secrets.rs` checks the log of a running binary).

use crate::config::{self, Config};

/// Every secret of the configuration below, each distinct enough to be found.
const SECRETS: &[&str] = &[
    "hs256-secret-value-0123456789abcdef01",
    "ingest-key-secret-value-0123456789",
    "webhook-secret-value-0123456789",
    "clickhouse-password-value-0123",
    "sasl-password-value-0123",
    "ssl-key-password-value-0123",
    "oauth-client-secret-value-0123",
];

/// The configuration file: every secret in its place.
fn toml() -> String {
    format!(
        r#"
[auth]
hs256_secret = "{}"

[[auth.ingest_keys]]
id = "crm"
account_id = 1
key = "{}"
webhook_secret = "{}"

[clickhouse]
url = "http://127.0.0.1:9"
user = "analyst"
password = "{}"

[kafka]
brokers = "127.0.0.1:9"

[kafka.properties]
"security.protocol" = "SASL_SSL"
"sasl.mechanisms" = "PLAIN"
"sasl.username" = "crmpulse"
"sasl.password" = "{}"
"ssl.key.password" = "{}"
"sasl.oauthbearer.client.secret" = "{}"
"#,
        SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], SECRETS[4], SECRETS[5], SECRETS[6]
    )
}

fn assert_no_secret(what: &str, printed: &str) {
    for secret in SECRETS {
        assert!(
            !printed.contains(secret),
            "{what} prints {secret}: {printed}"
        );
    }
}

#[test]
// The closure's error type is figment's own, fixed by `Jail::expect_with`.
#[allow(clippy::result_large_err)]
fn no_config_struct_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.toml");
    std::fs::write(&path, toml()).unwrap();
    figment::Jail::expect_with(|_jail| {
        let c: Config = config::load(Some(&path)).unwrap();
        // The secrets did load: each is where the code that sends it reads it.
        assert_eq!(c.auth.hs256_secret.expose(), SECRETS[0]);
        assert_eq!(c.auth.ingest_keys[0].key.expose(), SECRETS[1]);
        assert_eq!(c.clickhouse.password.expose(), SECRETS[3]);
        let kafka = c.kafka.clone().expect("[kafka]");
        assert_eq!(kafka.properties["sasl.password"], SECRETS[4]);

        let printed = [
            ("Config", format!("{c:?}"), format!("{c:#?}")),
            ("[auth]", format!("{:?}", c.auth), format!("{:#?}", c.auth)),
            (
                "[[auth.ingest_keys]]",
                format!("{:?}", c.auth.ingest_keys),
                format!("{:#?}", c.auth.ingest_keys),
            ),
            (
                "[clickhouse]",
                format!("{:?}", c.clickhouse),
                format!("{:#?}", c.clickhouse),
            ),
            ("[kafka]", format!("{kafka:?}"), format!("{kafka:#?}")),
            (
                "librdkafka's client config",
                format!("{:?}", kafka.client_config()),
                format!("{:#?}", kafka.producer_config(0)),
            ),
            (
                "[live], [api], [pipeline], [accounts]",
                format!("{:?} {:?} {:?}", c.live, c.api, c.pipeline),
                format!("{:#?}", c.accounts),
            ),
        ];
        for (what, flat, pretty) in &printed {
            assert_no_secret(what, flat);
            assert_no_secret(what, pretty);
        }
        // What is not secret still prints, so the check is not vacuous.
        let config = &printed[0].1;
        assert!(
            config.contains("analyst") && config.contains("crmpulse") && config.contains("crm"),
            "{config}"
        );
        Ok(())
    });
}
