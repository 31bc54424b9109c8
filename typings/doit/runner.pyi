from typing import Any

class Runner:
    always_execute: bool
    def run_all(self, task_dispatcher: Any) -> int: ...
