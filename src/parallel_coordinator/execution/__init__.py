"""Execution: where attempts run (the loky pool, Dask), what environment and checkout an agent gets."""
