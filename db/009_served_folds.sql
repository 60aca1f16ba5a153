-- Closing the loop (SPEC 3, 12): the teacher's served answers folded into `requests`, so that
-- what the teacher answered in production reaches curation. Written only by
-- workbench.store.serving, in the fold's transaction at the end of `workbench ingest
-- SPOOL_FOLDER` (pipelines.fold_served); the folded requests themselves go through the same
-- path as a log file's (pipelines.ingest), one ingest per spool segment, format 'served'.

-- One row per served request the fold took up (teacher model, status 'ok', its feedback window
-- closed), whatever became of it (written, a duplicate, quarantined): a request is folded at
-- most once, and its exports never change afterwards.
CREATE TABLE served_folds (
    request_id      VARCHAR PRIMARY KEY,    -- one of served_requests
    ingest_id       INTEGER NOT NULL,       -- the fold's ingest of its segment (format 'served')
    folded_at       TIMESTAMPTZ NOT NULL,   -- the fold's "now"
    feedback_until  TIMESTAMPTZ,            -- its exports sum the feedback created up to this
                                            -- time (created_at + window); NULL: every feedback
                                            -- stored at the fold (--feedback-window 0)
    n_feedback      INTEGER NOT NULL        -- feedback records summed into its exports
);

-- Feedback of a folded request that its folded exports do not include: created after the
-- request's feedback window, or ingested after the fold. It stays in served_feedback (the A/B
-- test counts it); this row says why `requests` does not, and that the summary told the user.
CREATE TABLE served_late_feedback (
    feedback_id  VARCHAR PRIMARY KEY,       -- one of served_feedback
    request_id   VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,          -- 'past the feedback window' or
                                            -- 'ingested after the fold'
    noticed_at   TIMESTAMPTZ NOT NULL       -- the "now" of the fold that found it
);
