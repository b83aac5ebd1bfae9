"""State: what lasts. SQLite, outputs on disk, what stays in memory, retention.

    store          sessions, tasks and attempts in SQLite
    names          ids as directory and git ref names
    schema         the tables and their migrations
    outputs        an output as kept: a bounded head and the whole text in a file
    retained       the bounded memory of ended sessions and results
    retention      which ended sessions and files to remove, and why
    cleanup        carrying out retention
    private_files  owner-only directories and files
"""

__all__ = [
    "cleanup",
    "names",
    "outputs",
    "private_files",
    "retained",
    "retention",
    "schema",
    "store",
]
