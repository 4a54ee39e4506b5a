"""The admission webhook server: AdmissionReview in, engine decision out (see docs/server.md)."""
