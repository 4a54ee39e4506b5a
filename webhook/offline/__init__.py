"""Offline judging and reporting: manifests (``check``), clusters (``audit``), HTML, quotas."""
