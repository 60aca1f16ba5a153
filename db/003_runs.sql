-- Training runs (SPEC 8): which student, which settings, which data, how long, where the model is.

CREATE TABLE runs (
    run_id        VARCHAR PRIMARY KEY,  -- also the artifact folder's name
    student       VARCHAR NOT NULL,     -- 'retrieval', 'heads', 'seq2seq'
    config        VARCHAR NOT NULL,     -- JSON of the student's settings
    version_id    INTEGER NOT NULL,
    split         VARCHAR NOT NULL,     -- what it was trained on ('train')
    n_train       INTEGER NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ NOT NULL,
    duration_s    DOUBLE NOT NULL,
    device        VARCHAR NOT NULL,
    size_bytes    BIGINT NOT NULL,
    artifact_path VARCHAR NOT NULL,
    note          VARCHAR NOT NULL DEFAULT ''
);
