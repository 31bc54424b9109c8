"""What a job's result depends on: its files and their hashes, tools and interpreters, the whole input key,
the up-to-date checks built from them, and why a job runs (each input that changed)."""
