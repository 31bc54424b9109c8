from typing import Any

class TaskControl:
    tasks: dict[str, Any]
    targets: dict[str, str]
    def _filter_tasks(self, task_selection: list[str]) -> list[str]: ...

class TaskDispatcher:
    tasks: dict[str, Any]
    nodes: dict[str, Any]
    def _get_next_node(self, ready: Any, tasks_to_run: list[str]) -> Any: ...
    def _gen_node(self, parent: Any, task_name: str) -> Any: ...

class ExecNode:
    task: Any
    task_dep: list[str]
    run_status: str | None
    def __init__(self, task: Any, parent: Any) -> None: ...
    def parent_status(self, parent_node: Any) -> None: ...
