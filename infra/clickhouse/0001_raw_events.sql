-- Raw events, one row per accepted event, exactly as the event log holds them.
-- ReplacingMergeTree keyed by (account_id, type, event_id): a re-sent event (a restart
-- that ships the log tail again) collapses into one row. Read with FINAL for exact
-- counts before background merges have run.
CREATE TABLE IF NOT EXISTS events
(
    account_id      UInt64,
    event_id        String,
    occurred_at     DateTime('UTC'),
    occurred_at_ms  Int64,
    type            String,
    conversation_id String,
    payload         String,
    log_seq         UInt64
)
ENGINE = ReplacingMergeTree(log_seq)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (account_id, type, event_id);
