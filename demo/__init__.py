"""The demo service and its traffic generator, run by ``otelkit stack up``."""
