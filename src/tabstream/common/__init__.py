"""Small shared helpers every part may use: canonical JSON, deadlines, structured logs and the
Prometheus metrics. Nothing here imports a service, an adapter or the pipeline."""
