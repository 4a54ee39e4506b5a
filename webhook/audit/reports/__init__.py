"""Renderers of a :class:`~webhook.audit.results.ScanReport`: one module per format."""
