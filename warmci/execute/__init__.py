"""Running one job: its processes, servers, ports, environment and worktree, in a doit worker."""
