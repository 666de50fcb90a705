"""The `modelguard` command: bring your own model (schema infer, package, validate, candidate)."""
