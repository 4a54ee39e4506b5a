"""What ``serve`` does beside answering admissions: it follows the Policy and
PolicyException objects of the cluster (and writes each Policy's status), elects a leader
through a Lease, and, when leading, keeps PolicyReports of what exists current.

This layer sits between the CLI and the server: it drives the server's state (the policy
reloader, the exception registry, metrics) and reads the cluster through the same
list+watch informer as the watch cache; the server knows nothing of it.
"""
