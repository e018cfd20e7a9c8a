"""The commands, one module each; ``doctor.cli`` imports and registers every one of them by name."""
