"""State: SQLite, outputs on disk, what stays in memory, retention."""
