"""Task creators: one module per job family, each returning doit task dicts.

Nothing here runs a command; building the task list only reads the pipeline
file and walks the target tree.
"""
