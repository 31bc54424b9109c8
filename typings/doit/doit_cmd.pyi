from collections.abc import Sequence
from typing import Any

class DoitMain:
    def __init__(self, task_loader: Any = None, config_filenames: Sequence[str] | str = ...,
                 extra_config: dict[str, Any] | None = None) -> None: ...
    def run(self, all_args: Sequence[str]) -> int: ...
