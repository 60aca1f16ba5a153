-- Browsing at ten million requests (issue 17): the Intents page joins its page of intents (25 to
-- 100 keys) to the chosen dataset version's rows for split and tools. The primary key
-- (version_id, intent_key) serves one key at a time only; with an index on the key alone
-- DuckDB looks the page's keys up in it instead of scanning every row of dataset_rows (233 ms
-- at 1M requests, 17 ms with it; measured with benchmarks/app_benchmark.py).
CREATE INDEX dataset_rows_intent_idx ON dataset_rows (intent_key);
