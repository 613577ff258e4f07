"""Hardware-aware zero-shot search: a [search] file (spec), strategies in a registry (strategies), the
deterministic loop (loop) evaluated in memory (tables) or by launch's shard tasks on Ray (driver), with rows
reused from earlier runs (rows) and the history checkpointed in the `search` table (checkpoint)."""
