-- Rollups of the pipeline's metric facts (see docs/clickhouse.md).
--
-- Grain: 15-minute UTC buckets (`bucket` is the bucket's start). Every UTC offset in
-- use is a multiple of 15 minutes, so every local hour and day, in every zone (+05:30,
-- +05:45, DST days), is a whole number of buckets: range sums stay exact. Hourly UTC
-- rows would not be (an India day starts at 18:30 UTC).
--
-- Every row holds an absolute value, rewritten with a higher `version` (the pipeline's
-- complete timestamp, ms) whenever it changes. ReplacingMergeTree(version) keeps the
-- newest row per key, so a replay or restart that rewrites rows never double counts.
-- Read with FINAL (or argMax(value, version) grouped by the key). Rows whose value
-- went back to 0 stay, with 0.

-- First human responses, in the 15-minute bucket of the reply; one row per distinct response time so that exact percentiles stay possible.
CREATE TABLE IF NOT EXISTS first_responses_15m
(
    account_id UInt64,
    bucket     DateTime('UTC'),
    channel    String,
    inbox_id   String,
    agent_id   String,
    team_id    String,
    seconds    UInt32,
    responses  Int64,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, channel, inbox_id, agent_id, team_id, seconds);

-- Conversations that have not had a first human reply (yet), in the bucket their wait started; for SLA breaches.
CREATE TABLE IF NOT EXISTS awaiting_first_response_15m
(
    account_id     UInt64,
    bucket         DateTime('UTC'),
    channel        String,
    inbox_id       String,
    team_id        String,
    start_ms       Int64,
    resolved_at_ms Int64,
    conversations  Int64,
    version        UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, channel, inbox_id, team_id, start_ms, resolved_at_ms);

-- Outbound WhatsApp messages that reached a status, in the bucket they were created.
CREATE TABLE IF NOT EXISTS whatsapp_outcomes_15m
(
    account_id UInt64,
    bucket     DateTime('UTC'),
    delivered  UInt8,
    messages   Int64,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, delivered);

-- Messages, in the bucket they were created.
CREATE TABLE IF NOT EXISTS messages_15m
(
    account_id UInt64,
    bucket     DateTime('UTC'),
    direction  String,
    channel    String,
    messages   Int64,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, direction, channel);

-- Conversations, in the bucket of their first open, split by whether they are resolved now.
CREATE TABLE IF NOT EXISTS conversations_opened_15m
(
    account_id    UInt64,
    bucket        DateTime('UTC'),
    channel       String,
    inbox_id      String,
    campaign_id   String,
    resolved      UInt8,
    conversations Int64,
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, channel, inbox_id, campaign_id, resolved);

-- conversation_resolved events, in their bucket.
CREATE TABLE IF NOT EXISTS resolutions_15m
(
    account_id  UInt64,
    bucket      DateTime('UTC'),
    resolved_by String,
    agent_id    String,
    channel     String,
    inbox_id    String,
    resolutions Int64,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, resolved_by, agent_id, channel, inbox_id);

-- An agent sent at least one message in a conversation during a bucket (conversation_id kept for exact distinct counts).
CREATE TABLE IF NOT EXISTS agent_handled_15m
(
    account_id      UInt64,
    bucket          DateTime('UTC'),
    agent_id        String,
    team_id         String,
    channel         String,
    inbox_id        String,
    conversation_id String,
    handled         Int64,
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, agent_id, team_id, channel, inbox_id, conversation_id);

-- A customer's conversation, in the bucket it was opened; first = 1 for the customer's first conversation ever.
CREATE TABLE IF NOT EXISTS customer_conversations_15m
(
    account_id    UInt64,
    bucket        DateTime('UTC'),
    channel       String,
    inbox_id      String,
    customer_id   String,
    first         UInt8,
    conversations Int64,
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, channel, inbox_id, customer_id, first);

-- Milliseconds each agent spent in each status, per bucket (closed stretches; the open-ended current one is in agent_status_now).
CREATE TABLE IF NOT EXISTS agent_status_15m
(
    account_id   UInt64,
    bucket       DateTime('UTC'),
    agent_id     String,
    team_id      String,
    status       String,
    milliseconds Int64,
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, agent_id, team_id, status);

-- Ticket resolutions, in the bucket of each ticket's earliest ticket_resolved.
CREATE TABLE IF NOT EXISTS tickets_resolved_15m
(
    account_id UInt64,
    bucket     DateTime('UTC'),
    priority   String,
    tickets    Int64,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, priority);

-- Leads, in the bucket they were created.
CREATE TABLE IF NOT EXISTS leads_15m
(
    account_id  UInt64,
    bucket      DateTime('UTC'),
    campaign_id String,
    leads       Int64,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, campaign_id);

-- Won deals, in the bucket they were won, attributed to the lead's campaign.
CREATE TABLE IF NOT EXISTS deals_won_15m
(
    account_id   UInt64,
    bucket       DateTime('UTC'),
    campaign_id  String,
    currency     String,
    deals        Int64,
    amount_minor Int64,
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, bucket, campaign_id, currency);

-- Conversations open now, by holder.
CREATE TABLE IF NOT EXISTS active_conversations_now
(
    account_id    UInt64,
    holder        String,
    agent_id      String,
    channel       String,
    inbox_id      String,
    conversations Int64,
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, holder, agent_id, channel, inbox_id);

-- Tickets open now, by priority.
CREATE TABLE IF NOT EXISTS open_tickets_now
(
    account_id UInt64,
    priority   String,
    tickets    Int64,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, priority);

-- Each agent's current status and since when.
CREATE TABLE IF NOT EXISTS agent_status_now
(
    account_id UInt64,
    agent_id   String,
    team_id    String,
    status     String,
    since_ms   Int64,
    agents     Int64,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, agent_id, team_id, status, since_ms);
