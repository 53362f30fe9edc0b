-- Covering index of the transaction statistics: the per-user aggregate grouped by type,
-- category and account (`store::transaction_reads::flow_groups`) is an index-only scan read in
-- group order on PostgreSQL (no heap access, no hashing), and a covering scan on SQLite.
CREATE INDEX transactions_user_stats_idx ON transactions (user_id, type, category_id, account_id, date, amount);
