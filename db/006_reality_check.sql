-- The human reality check (the poster's "Reality check"): a stratified sample of a run's test
-- intents, rendered for annotators, and their two yes/no answers per sample.
-- The student's answers are stored at sampling time, so a check stays reproducible when the
-- run's model folder moves or is deleted.

CREATE SEQUENCE reality_check_id_seq START 1;
CREATE TABLE reality_checks (
    check_id    INTEGER PRIMARY KEY DEFAULT nextval('reality_check_id_seq'),
    created_at  TIMESTAMPTZ NOT NULL,
    run_id      VARCHAR NOT NULL,        -- the student whose answers are judged
    version_id  INTEGER NOT NULL,        -- the dataset version whose test split was sampled
    n_samples   INTEGER NOT NULL,        -- drawn (the request, capped at the test split's size)
    seed        INTEGER NOT NULL,
    image       VARCHAR NOT NULL,        -- sample image name or absolute path used for renders
    note        VARCHAR NOT NULL DEFAULT '',
    config      VARCHAR NOT NULL,        -- JSON of the step's config
    strata      VARCHAR NOT NULL,        -- JSON: {stratum: {"population": n, "sampled": n}}
    render_dir  VARCHAR                  -- the folder of the latest render, NULL before one
);

CREATE TABLE reality_samples (
    check_id        INTEGER NOT NULL,
    sample_no       INTEGER NOT NULL,    -- 1..n_samples, in the (shuffled) order shown
    intent_key      VARCHAR NOT NULL,
    intent_text     VARCHAR NOT NULL,
    request_count   INTEGER NOT NULL,
    stratum         VARCHAR NOT NULL,    -- e.g. 'bad/popular' (see pipelines.reality_check)
    tools_agreeing  INTEGER NOT NULL,    -- 0..3, what the quality part of the stratum is made of
    teacher_adjust            VARCHAR,   -- the version's ground truth, canonical JSON, NULL = unused
    teacher_selective_adjust  VARCHAR,
    teacher_filter            VARCHAR,
    student_adjust            VARCHAR,   -- the student's prediction at sampling time
    student_selective_adjust  VARCHAR,
    student_filter            VARCHAR,
    PRIMARY KEY (check_id, sample_no)
);

-- One row per annotator and sample; answering again replaces the earlier answer.
CREATE TABLE reality_answers (
    check_id     INTEGER NOT NULL,
    sample_no    INTEGER NOT NULL,
    annotator    VARCHAR NOT NULL,
    relevant     BOOLEAN NOT NULL,       -- is the student's image relevant to the intent?
    mimics       BOOLEAN NOT NULL,       -- does the student's image mimic the teacher's?
    answered_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (check_id, sample_no, annotator)
);
