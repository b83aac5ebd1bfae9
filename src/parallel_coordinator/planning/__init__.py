"""Planning: a plan becomes a validated task graph; the pure scheduler and estimates over it."""
