"""Searches over public result tables (NAS-Bench-201, Accel-NASBench): accuracy and training time
looked up, latency predicted by fnas-hls's own model, so a search takes seconds and a hundred seeds
can judge it."""
