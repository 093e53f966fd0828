"""Prometheus rules and Grafana dashboards as code: one source for the repo's files, the
docker-compose stack and the Helm chart (``pileon generate`` writes them)."""
