-- Serving (SPEC 12): what `workbench serve` answered and the export feedback its callers sent,
-- brought in from the spool by `workbench ingest SPOOL_FOLDER`. Written only by
-- workbench.store.serving; tool columns are canonical JSON (NULL = tool not used), written
-- after workbench.tools validated the answer, as in `requests`.

CREATE TABLE served_requests (
    request_id       VARCHAR PRIMARY KEY,    -- req_<32 hex>, returned to the caller
    created_at       TIMESTAMPTZ NOT NULL,
    session_id       VARCHAR,                -- the caller's `user` field or session header
    model            VARCHAR NOT NULL,       -- student:<run id> or teacher:<model name>
    arm              VARCHAR,                -- the A/B arm; NULL when the caller named the model
    intent_key       VARCHAR NOT NULL,       -- intent identity (SPEC 3)
    intent_text      VARCHAR NOT NULL,       -- as the caller wrote it (trimmed)
    adjust           VARCHAR,                -- the answer served
    selective_adjust VARCHAR,
    filter           VARCHAR,
    status           VARCHAR NOT NULL,       -- 'ok' or 'error:<code>' (then no answer)
    latency_ms       DOUBLE,
    ingest_id        INTEGER NOT NULL,
    source_file      VARCHAR NOT NULL,       -- the spool segment
    source_location  VARCHAR NOT NULL        -- 'line 12'
);
CREATE INDEX served_requests_session_idx ON served_requests (session_id);

-- Several feedback records may name one request; the online test sums them.
CREATE TABLE served_feedback (
    feedback_id              VARCHAR PRIMARY KEY,   -- fb_<32 hex>
    request_id               VARCHAR NOT NULL,      -- always one of served_requests
    created_at               TIMESTAMPTZ NOT NULL,
    exports_adjust           BIGINT NOT NULL,
    exports_selective_adjust BIGINT NOT NULL,
    exports_filter           BIGINT NOT NULL,
    ingest_id                INTEGER NOT NULL,
    source_file              VARCHAR NOT NULL,
    source_location          VARCHAR NOT NULL
);
CREATE INDEX served_feedback_request_idx ON served_feedback (request_id);

-- How far ingest has read each spool segment, so that a re-ingest reads only what is new (an
-- open segment grows) and a finished segment is skipped without being read again. A segment is
-- known by its name without `.open` (unique: time, pid, sequence), checked by the SHA-256 of the
-- bytes read so far.
CREATE TABLE spool_segments (
    segment      VARCHAR PRIMARY KEY,   -- spool-...-<pid>-<seq>.jsonl
    source_file  VARCHAR NOT NULL,      -- the path last read (with `.open` while it was open)
    bytes_read   BIGINT NOT NULL,       -- whole lines read, and a torn tail once finished
    lines_read   BIGINT NOT NULL,
    sha256       VARCHAR NOT NULL,      -- of the first bytes_read bytes
    size_bytes   BIGINT NOT NULL,       -- the file's size and modification time when read
    mtime_ns     BIGINT NOT NULL,
    finished     BOOLEAN NOT NULL,      -- closed, or its writer gone: nothing more will come
    ingest_id    INTEGER NOT NULL       -- the latest ingest that read it
);

-- Feedback that arrived before its request was quarantined ("feedback for unknown request id
-- <id>"); when a later ingest brings the request, the feedback moves into served_feedback and
-- leaves the quarantine, and this row says where it was.
CREATE TABLE served_feedback_releases (
    feedback_id          VARCHAR PRIMARY KEY,
    quarantine_id        BIGINT NOT NULL,      -- its (removed) quarantine row
    quarantined_ingest_id INTEGER NOT NULL,
    released_ingest_id   INTEGER NOT NULL,
    released_at          TIMESTAMPTZ NOT NULL
);
