"""pileon's stream processing: the Faust app, its agents and the per-person analysis."""
