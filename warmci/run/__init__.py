"""A whole run in doit's main process: its lifecycle, reporter and results, the terminal, dispatch order,
history, resource samples, versions, and what is read back afterwards (explain, Gantt charts)."""
