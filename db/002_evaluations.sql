-- Evaluations (SPEC 5): what was evaluated, on which version and split, and every number.

CREATE SEQUENCE evaluation_id_seq START 1;
CREATE TABLE evaluations (
    evaluation_id   INTEGER PRIMARY KEY DEFAULT nextval('evaluation_id_seq'),
    created_at      TIMESTAMPTZ NOT NULL,
    version_id      INTEGER NOT NULL,
    split           VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,    -- 'predictions', 'run', 'self_consistency', 'baseline'
    source          VARCHAR NOT NULL,    -- file path, run id or baseline name
    predictions_sha VARCHAR,             -- hash of the predictions evaluated
    summary         VARCHAR NOT NULL     -- JSON: per subset, per tool, every number
);

-- What was predicted for each intent (a file's or a student's answer).
CREATE TABLE evaluation_predictions (
    evaluation_id    INTEGER NOT NULL,
    sample_id        VARCHAR NOT NULL,   -- the intent key, or intent key + '#' + n for samples
    intent_key       VARCHAR NOT NULL,
    adjust           VARCHAR,
    selective_adjust VARCHAR,
    filter           VARCHAR,
    PRIMARY KEY (evaluation_id, sample_id)
);

-- Per sample and tool: used/used, similarity, cosine gap and the augmentation flag (SPEC 6).
-- Cosines are signed (SPEC 5: a negative cosine counts as it is). Rows written before issue 15
-- hold a negative cosine as 0 in similarity, cosine and cosine_gap; they are left as they are,
-- consistent with their evaluation's stored summary.
CREATE TABLE evaluation_scores (
    evaluation_id   INTEGER NOT NULL,
    sample_id       VARCHAR NOT NULL,
    intent_key      VARCHAR NOT NULL,
    tool            VARCHAR NOT NULL,
    teacher_used    BOOLEAN NOT NULL,
    student_used    BOOLEAN NOT NULL,
    similarity      DOUBLE,              -- signed cosine or filter-name match, when both used
    cosine          DOUBLE,              -- signed, in [-1, 1]; vector tools, unused = zero vector
    cosine_gap      DOUBLE,              -- the tool's mean cosine minus this cosine (signed)
    intensity_error INTEGER,
    flagged         BOOLEAN NOT NULL,
    PRIMARY KEY (evaluation_id, sample_id, tool)
);
