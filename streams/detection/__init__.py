"""Per-person detection, with no Kafka in it: ingest (validation, dedup), near-duplicate
clusters, detectors, the decision step (incidents) and the window store. Runs the same in the
worker, in ``pileon score-csv`` and in the benchmarks."""
