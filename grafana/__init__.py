"""otelkit's Grafana dashboards as code and the provisioning that loads them (see grafana/README.md)."""
