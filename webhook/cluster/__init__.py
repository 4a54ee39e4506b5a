"""Cluster state the engine reads: one small interface, an in-memory and a watch-cache backend."""
