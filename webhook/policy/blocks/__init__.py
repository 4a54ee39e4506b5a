"""Policy blocks as plug-ins: the protocol (protocol.py), the registry (registry.py), one
module per block (validations, mutations, limit, unique) and what they share (counters,
keys, ownership, patches). Below the loader and the engine, above the model and CEL."""
