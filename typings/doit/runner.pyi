from collections.abc import Mapping
from typing import Any

class Runner:
    always_execute: bool
    continue_: bool
    def run_all(self, task_dispatcher: Any) -> int: ...
    def select_task(self, node: Any, tasks_dict: Mapping[str, Any]) -> bool: ...
