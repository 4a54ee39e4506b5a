"""YAML and CRD objects in, a validated model out: documents with their locations, the JSON
Schemas (and the CRDs generated from them), and the static checks of a whole policy."""
