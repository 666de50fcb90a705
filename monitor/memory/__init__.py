"""The operator's durable memory: typed state, candidates, the audit entry.

Stored through a key -> JSON protocol that the store implements."""
