-- Augmentation (SPEC 6): embedding cache, augmentation rounds, candidates and their review.
-- Mining flags are an evaluation of the run on its training split (kind 'mining'), so the
-- per-intent, per-tool flags live in evaluation_scores with every other score.

-- Sentence embeddings by model and exact text, so dedup never embeds the same text twice.
CREATE TABLE embeddings (
    model   VARCHAR NOT NULL,            -- the encoder's name or path
    text    VARCHAR NOT NULL,
    vector  FLOAT[] NOT NULL,            -- unit length
    PRIMARY KEY (model, text)
);

-- One round: mine a run's errors, paraphrase the flagged intents, dedup, queue.
CREATE SEQUENCE augmentation_id_seq START 1;
CREATE TABLE augmentations (
    augmentation_id INTEGER PRIMARY KEY DEFAULT nextval('augmentation_id_seq'),
    created_at      TIMESTAMPTZ NOT NULL,
    run_id          VARCHAR,             -- the student whose errors were mined (NULL: hand-picked)
    version_id      INTEGER NOT NULL,    -- the dataset version the sources came from
    mining_evaluation_id INTEGER,        -- the evaluation holding the flags
    paraphraser     VARCHAR NOT NULL,    -- 'offline' or 'llm:<model>'
    config          VARCHAR NOT NULL,    -- JSON of the step's config
    summary         VARCHAR NOT NULL     -- JSON: counts (sources, generated, kept, dropped by reason, failed)
);

-- Every candidate ever generated; dropped ones stay with their reason (annotate, don't delete).
CREATE SEQUENCE candidate_id_seq START 1;
CREATE TABLE candidates (
    candidate_id       BIGINT PRIMARY KEY DEFAULT nextval('candidate_id_seq'),
    augmentation_id    INTEGER NOT NULL,
    source_intent_key  VARCHAR NOT NULL,
    intent_key         VARCHAR NOT NULL,
    intent_text        VARCHAR NOT NULL,
    adjust             VARCHAR,          -- the source intent's ground truth (canonical JSON)
    selective_adjust   VARCHAR,
    filter             VARCHAR,
    status             VARCHAR NOT NULL
                       CHECK (status IN ('dropped', 'pending', 'approved', 'rejected')),
    drop_reason        VARCHAR,          -- 'near_test', 'near_train', 'near_candidate'
    nearest_text       VARCHAR,          -- its nearest neighbour over train, test and kept candidates
    nearest_kind       VARCHAR,          -- 'train', 'test' or 'candidate'
    nearest_similarity DOUBLE,
    reviewed_by        VARCHAR,
    reviewed_at        TIMESTAMPTZ,
    committed_version_id INTEGER         -- the dataset version it went into (lineage)
);
CREATE INDEX candidates_augmentation_idx ON candidates (augmentation_id);

-- Source intents the paraphraser failed on (unparseable reply, timeout): recorded, not fatal.
CREATE TABLE paraphrase_failures (
    augmentation_id   INTEGER NOT NULL,
    source_intent_key VARCHAR NOT NULL,
    error             VARCHAR NOT NULL
);
