-- The LLM client (SPEC 6): cached replies, and one row per HTTP attempt or cache hit so that
-- tokens, cost and failures can be counted. No API key is ever stored here.

-- A successful, parseable reply per prompt: a rerun with the same prompt costs nothing.
CREATE TABLE llm_cache (
    cache_key   VARCHAR PRIMARY KEY,   -- sha256 of base_url, model, messages JSON, temperature, n
    model       VARCHAR NOT NULL,
    reply       VARCHAR NOT NULL,      -- the assistant message's text, as received
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE SEQUENCE llm_call_id_seq START 1;
-- Status and purpose are checked in Python (workbench.llm.CallStatus / Purpose), not here, so that
-- a new purpose needs no migration.
CREATE TABLE llm_calls (
    call_id           BIGINT PRIMARY KEY DEFAULT nextval('llm_call_id_seq'),
    cache_key         VARCHAR,           -- groups the attempts of one prompt
    attempt           INTEGER NOT NULL,  -- 1 for the first HTTP attempt (and for a cache hit)
    purpose           VARCHAR NOT NULL,  -- 'paraphrase', 'test_connection'
    model             VARCHAR NOT NULL,
    base_url          VARCHAR NOT NULL,  -- without any user:password part
    started_at        TIMESTAMPTZ NOT NULL,
    duration_ms       DOUBLE NOT NULL,
    status            VARCHAR NOT NULL,  -- 'ok', 'cached', 'retry', 'failed', 'unparseable'
    http_status       INTEGER,           -- NULL for timeouts, connection errors and cache hits
    error             VARCHAR,           -- safe to show: never contains the API key
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    cost_usd          DOUBLE             -- NULL when the prices are not configured
);
CREATE INDEX llm_calls_started_idx ON llm_calls (started_at);
