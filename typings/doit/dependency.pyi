import os
from collections.abc import Callable, Mapping
from typing import Any

class MD5Checker:
    def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool: ...

class UptodateCalculator:
    get_val: Callable[[str, str], Any] | None
    tasks_dict: Mapping[str, Any] | None
    def __init__(self) -> None: ...
    def setup(self, dep_manager: Any, tasks_dict: Mapping[str, Any]) -> None: ...

class Dependency:
    def status_is_ignore(self, task: Any) -> bool: ...
