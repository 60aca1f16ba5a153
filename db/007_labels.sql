-- Labels (SPEC 11): every answer an intent has been given, with its source, kept for good.
-- A label is never updated or deleted: an edit is a new label naming the one it was edited from.
-- Tool columns are canonical JSON (NULL = tool not used), written only after workbench.tools
-- validated the answer, as in dataset_rows.

CREATE SEQUENCE label_id_seq START 1;
CREATE TABLE labels (
    label_id          BIGINT PRIMARY KEY DEFAULT nextval('label_id_seq'),
    intent_key        VARCHAR NOT NULL,
    intent_text       VARCHAR NOT NULL,  -- the intent as the labeller saw it
    kind              VARCHAR NOT NULL CHECK (kind IN ('curation', 'teacher', 'student', 'curator')),
    author            VARCHAR NOT NULL,  -- curator name, teacher model, run id; 'curation'
    source            VARCHAR NOT NULL,  -- as shown: curation, teacher:<model>, student:<run>, curator:<name>
    adjust            VARCHAR,
    selective_adjust  VARCHAR,
    filter            VARCHAR,
    edited_from       BIGINT,            -- the label this one was edited from, or NULL
    note              VARCHAR NOT NULL DEFAULT '',
    created_at        TIMESTAMPTZ NOT NULL,
    version_id        INTEGER            -- curation labels: the version whose curation chose it
);
CREATE INDEX labels_intent_idx ON labels (intent_key);

-- Which label each dataset version row came from. Versions made before this migration have no
-- rows here (their ground truth is the export-rate choice of their curation).
CREATE TABLE dataset_row_labels (
    version_id  INTEGER NOT NULL,
    intent_key  VARCHAR NOT NULL,
    label_id    BIGINT NOT NULL,
    PRIMARY KEY (version_id, intent_key)
);

-- Teacher labelling calls that gave no label: the reply did not parse, named an unknown tool,
-- refused. The raw reply is kept.
CREATE SEQUENCE label_failure_id_seq START 1;
CREATE TABLE label_failures (
    failure_id   BIGINT PRIMARY KEY DEFAULT nextval('label_failure_id_seq'),
    intent_key   VARCHAR NOT NULL,
    intent_text  VARCHAR NOT NULL,
    model        VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,
    raw          VARCHAR,
    created_at   TIMESTAMPTZ NOT NULL
);

-- Who is working on an intent of the label queue right now (one claim per intent; a claim
-- older than the queue's expiry counts for nothing).
CREATE TABLE label_claims (
    intent_key  VARCHAR PRIMARY KEY,
    curator     VARCHAR NOT NULL,
    claimed_at  TIMESTAMPTZ NOT NULL
);
