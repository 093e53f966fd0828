"""The Faust worker: the app, its agents and tables, and what keeps it honest (offset guard,
stall watchdog, lag metrics)."""
