-- 001: model versions and the current pointer, the reference files, the feedback row
-- counter and the retraining requests. The feedback table itself (prod_data) has one
-- column per PCA component, so the store creates it when it first knows N_COMPONENTS
-- (mlstack.db.prod); its row count lives here, in prod_counter.

CREATE TABLE model_versions (
    version integer PRIMARY KEY,
    manifest jsonb NOT NULL,
    embedding bytea NOT NULL,
    scaler bytea NOT NULL,
    model bytea NOT NULL,
    rejected boolean NOT NULL DEFAULT false,
    pinned boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row: the version in use, changed in one UPDATE.
CREATE TABLE model_current (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    version integer REFERENCES model_versions (version),
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO model_current (id, version) VALUES (true, NULL);

CREATE TABLE reference_files (
    name text PRIMARY KEY,
    data bytea NOT NULL,
    sha256 text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row: feedback rows stored, incremented in the transaction that stores a row,
-- so each row gets its own count (the every-k trigger fires once per k rows).
CREATE TABLE prod_counter (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    rows bigint NOT NULL DEFAULT 0
);
INSERT INTO prod_counter (id, rows) VALUES (true, 0);

-- Every retraining a trigger asked for, once per (kind, rows). It is done when a
-- version was trained on at least `rows` feedback rows (its manifest's prod_seen).
CREATE TABLE retrain_requests (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    rows bigint NOT NULL,
    reason text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, rows)
);
CREATE INDEX retrain_requests_rows ON retrain_requests (rows);
