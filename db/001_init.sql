-- Foundation schema: raw requests, intents, quarantine, ingests, dataset versions.
-- Tool parameters are stored as canonical JSON text (NULL = tool not used), written only by
-- workbench.tools after validation, so every row in these tables is valid.

CREATE SEQUENCE ingest_id_seq START 1;
CREATE TABLE ingests (
    ingest_id    INTEGER PRIMARY KEY DEFAULT nextval('ingest_id_seq'),
    source_file  VARCHAR NOT NULL,
    format       VARCHAR NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ NOT NULL,
    n_read       INTEGER NOT NULL,
    n_ingested   INTEGER NOT NULL,
    n_duplicates INTEGER NOT NULL,
    n_quarantined INTEGER NOT NULL,
    error        VARCHAR            -- a file-level problem (unreadable, empty), else NULL
);

CREATE TABLE intents (
    intent_key    VARCHAR PRIMARY KEY,   -- lower-cased, whitespace collapsed
    intent_text   VARCHAR NOT NULL,      -- the first-seen spelling, for display
    first_seen_at TIMESTAMPTZ NOT NULL,
    ingest_id     INTEGER NOT NULL
);

-- Per-intent numbers for browsing, refreshed for the touched intents by every ingest.
CREATE TABLE intent_stats (
    intent_key     VARCHAR PRIMARY KEY,
    request_count  INTEGER NOT NULL,     -- all requests, zero-export ones included
    exported_count INTEGER NOT NULL,     -- requests with at least one export
    export_rate    DOUBLE NOT NULL,      -- exported_count / request_count
    output_count   INTEGER NOT NULL,     -- distinct teacher outputs
    last_seen_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE requests (
    request_id        VARCHAR PRIMARY KEY,
    intent_key        VARCHAR NOT NULL,
    intent_text       VARCHAR NOT NULL,  -- as written in this request (trimmed)
    created_at        TIMESTAMPTZ NOT NULL,
    adjust            VARCHAR,
    selective_adjust  VARCHAR,
    filter            VARCHAR,
    filter_name       VARCHAR,
    exports_adjust    BIGINT NOT NULL,
    exports_selective_adjust BIGINT NOT NULL,
    exports_filter    BIGINT NOT NULL,
    teacher_model     VARCHAR,
    latency_ms        DOUBLE,
    cost_usd          DOUBLE,
    session_id        VARCHAR,
    content_hash      VARCHAR NOT NULL,  -- of the validated record: same id + same hash = no-op
    ingest_id         INTEGER NOT NULL,
    source_file       VARCHAR NOT NULL,
    source_location   VARCHAR NOT NULL
);
CREATE INDEX requests_intent_idx ON requests (intent_key);

CREATE SEQUENCE quarantine_id_seq START 1;
CREATE TABLE quarantine (
    quarantine_id   BIGINT PRIMARY KEY DEFAULT nextval('quarantine_id_seq'),
    ingest_id       INTEGER NOT NULL,
    source_file     VARCHAR NOT NULL,
    location        VARCHAR NOT NULL,    -- 'line 12', 'row 3', or 'file'
    reason          VARCHAR NOT NULL,
    raw             VARCHAR,             -- the record as found (undecodable bytes escaped)
    quarantined_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE dataset_versions (
    version_id   INTEGER PRIMARY KEY,
    parent_id    INTEGER,
    created_by   VARCHAR NOT NULL,       -- 'curation', 'augmentation', ...
    created_at   TIMESTAMPTZ NOT NULL,
    note         VARCHAR NOT NULL,
    config       VARCHAR NOT NULL,       -- JSON of the step's config, stored with the artifact
    n_train      INTEGER NOT NULL,
    n_test       INTEGER NOT NULL
);

CREATE TABLE dataset_rows (
    version_id        INTEGER NOT NULL,
    intent_key        VARCHAR NOT NULL,
    intent_text       VARCHAR NOT NULL,
    split             VARCHAR NOT NULL CHECK (split IN ('train', 'test')),
    request_count     INTEGER NOT NULL,  -- requests in the raw logs, zero-export ones included
    adjust            VARCHAR,
    selective_adjust  VARCHAR,
    filter            VARCHAR,
    origin            VARCHAR NOT NULL,  -- 'logs' or 'augmentation'
    source_intent_key VARCHAR,           -- for augmentations: the intent it was made from
    PRIMARY KEY (version_id, intent_key)
);

-- Why each ground truth was chosen: per version, intent and tool, the winning output's numbers.
CREATE TABLE ground_truth_choices (
    version_id   INTEGER NOT NULL,
    intent_key   VARCHAR NOT NULL,
    tool         VARCHAR NOT NULL,
    output       VARCHAR,                -- canonical JSON of the chosen output, NULL = not used
    exports      BIGINT NOT NULL,
    n_requests   INTEGER NOT NULL,
    export_rate  DOUBLE NOT NULL,
    n_candidates INTEGER NOT NULL,       -- distinct outputs this intent had for this tool
    PRIMARY KEY (version_id, intent_key, tool)
);

CREATE TABLE settings (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
