"""The one user-facing error type: what was wrong and what to do."""


class WarmciError(Exception):
    """An error a user can fix; its message names the input and the remedy."""


class PipelineError(WarmciError):
    """A pipeline file that does not describe a valid pipeline."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path, self.key, self.problem = path, key, problem
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")
