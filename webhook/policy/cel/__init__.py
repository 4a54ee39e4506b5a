"""Kubernetes CEL as policies use it: our syntax tree, the references an expression makes,
its bounds, our functions, static type and cost checks, and evaluation. The lowest layer."""
