"""Config-as-code for Prometheus and Alertmanager (not part of the otelkit package)."""
