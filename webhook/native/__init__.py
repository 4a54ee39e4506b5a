"""Native export: the policies the API server can run itself, as ValidatingAdmissionPolicy and
MutatingAdmissionPolicy objects, and a coverage matrix of what needs the webhook and why."""
