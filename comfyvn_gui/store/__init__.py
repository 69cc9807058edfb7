"""Local state: paths and homes, the registry transaction, the keyring, the jobs database, check
results, settings, pinned host keys and the audit log. No network (docs/architecture.md)."""
