"""A job's inputs: which files it reads, what their contents are, and its whole key."""
