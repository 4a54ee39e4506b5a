"""The pure decision engine: the compiled policy set, the request context, the evaluation
budget, limits and unique keys, and the ports it reads the cluster through."""
