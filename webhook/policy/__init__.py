"""Policy model, loading, CEL and the pure decision engine. Imports nothing from the edges."""
