"""The line that ends a finished job's log: the run machinery writes it, the progress report
reads it."""

FINISHED = "job finished in"
