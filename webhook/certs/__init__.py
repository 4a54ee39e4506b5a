"""Certificates for the webhook: issue, store in the cluster, serve with hot reload, register.

Import from the submodules (``webhook.certs.issue``, ``.files``, ``.tls``, ``.bootstrap``,
``webhook.registration``); this package module stays empty so importing one does not import all.
"""
