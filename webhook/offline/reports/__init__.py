"""Renderers of a :class:`~webhook.offline.results.ScanReport`: one module per format."""
