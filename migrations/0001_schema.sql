-- CashCraft schema, portable between PostgreSQL and SQLite.
-- Conventions: ids are UUID text; money is BIGINT minor units (cents); rates and percentages
-- are BIGINT in units of 1e-8; times are BIGINT epoch milliseconds (UTC); booleans are BIGINT 0/1.
-- Every user-owned table carries user_id and every query filters by it.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    password_hash       TEXT,
    display_name        TEXT NOT NULL,
    is_premium          BIGINT NOT NULL DEFAULT 0,
    premium_expires_at  BIGINT,
    is_guest            BIGINT NOT NULL DEFAULT 0,
    google_id           TEXT UNIQUE,
    last_login          BIGINT,
    last_sync_at        BIGINT,
    -- Per-user change clock: every write to the user's synced data takes it (row lock) and
    -- stamps the rows it changes, so changes are stamped in commit order.
    change_clock        BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    family_id    TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    replaced_by  TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE accounts (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    type                  TEXT NOT NULL,
    balance               BIGINT NOT NULL DEFAULT 0,
    currency              TEXT NOT NULL DEFAULT 'RUB',
    exchange_rate         BIGINT NOT NULL DEFAULT 100000000,
    card_number           TEXT,
    color                 TEXT,
    icon                  TEXT,
    is_default            BIGINT NOT NULL DEFAULT 0,
    is_included_in_total  BIGINT NOT NULL DEFAULT 1,
    target_amount         BIGINT,
    linked_account_id     TEXT,
    saved_amount          BIGINT,
    credit_start_date     BIGINT,
    credit_term           BIGINT,
    credit_rate           BIGINT,
    credit_payment_type   TEXT,
    credit_initial_amount BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    synced_at             BIGINT,
    server_created_at     BIGINT NOT NULL,
    server_updated_at     BIGINT NOT NULL
);
CREATE INDEX accounts_user_idx ON accounts (user_id, created_at);
CREATE INDEX accounts_user_changed_idx ON accounts (user_id, server_updated_at);

CREATE TABLE categories (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    type               TEXT NOT NULL,
    icon               TEXT,
    color              TEXT,
    is_system          BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    synced_at          BIGINT,
    server_created_at  BIGINT NOT NULL,
    server_updated_at  BIGINT NOT NULL
);
CREATE INDEX categories_user_idx ON categories (user_id, type, name);
CREATE INDEX categories_user_changed_idx ON categories (user_id, server_updated_at);

CREATE TABLE transactions (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    account_id         TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    category_id        TEXT REFERENCES categories(id) ON DELETE SET NULL,
    amount             BIGINT NOT NULL,
    type               TEXT NOT NULL,
    date               BIGINT NOT NULL,
    description        TEXT,
    to_account_id      TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    synced_at          BIGINT,
    server_created_at  BIGINT NOT NULL,
    server_updated_at  BIGINT NOT NULL
);
CREATE INDEX transactions_user_date_idx ON transactions (user_id, date, created_at);
CREATE INDEX transactions_account_idx ON transactions (account_id, date);
CREATE INDEX transactions_to_account_idx ON transactions (to_account_id, date);
CREATE INDEX transactions_category_idx ON transactions (category_id);
CREATE INDEX transactions_user_changed_idx ON transactions (user_id, server_updated_at);

CREATE TABLE debts (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type                  TEXT NOT NULL,
    name                  TEXT NOT NULL,
    amount                BIGINT NOT NULL,
    is_included_in_total  BIGINT NOT NULL DEFAULT 1,
    due_date              BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    synced_at             BIGINT,
    server_created_at     BIGINT NOT NULL,
    server_updated_at     BIGINT NOT NULL
);
CREATE INDEX debts_user_idx ON debts (user_id, created_at);
CREATE INDEX debts_user_changed_idx ON debts (user_id, server_updated_at);

CREATE TABLE user_exchange_rates (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    from_currency      TEXT NOT NULL,
    to_currency        TEXT NOT NULL,
    rate               BIGINT NOT NULL,
    mode               TEXT NOT NULL DEFAULT 'manual',
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    server_created_at  BIGINT NOT NULL,
    server_updated_at  BIGINT NOT NULL,
    UNIQUE (user_id, from_currency, to_currency)
);
CREATE INDEX user_exchange_rates_changed_idx ON user_exchange_rates (user_id, server_updated_at);

-- Provider base rates: one row per currency against the provider's base currency.
-- The shared reference table (not user-owned).
CREATE TABLE currency_rates (
    currency    TEXT PRIMARY KEY,
    base        TEXT NOT NULL,
    rate        TEXT NOT NULL,
    provider    TEXT NOT NULL,
    fetched_at  BIGINT NOT NULL
);

-- Deletions remembered for incremental sync.
CREATE TABLE sync_tombstones (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    table_name  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    deleted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, table_name, record_id)
);
CREATE INDEX sync_tombstones_user_idx ON sync_tombstones (user_id, deleted_at);
