from collections.abc import Sequence
from typing import Any

from doit.cmd_base import DoitCmdBase

class Info(DoitCmdBase):
    def _execute(self, pos_args: Sequence[str], hide_status: bool = False) -> Any: ...
