from typing import Any, TextIO

class Command:
    name: str
    doc_purpose: str
    doc_usage: str
    doc_description: str | None
    cmd_options: tuple[Any, ...]

class DoitCmdBase(Command):
    task_list: list[Any]
    dep_manager: Any
    outstream: TextIO
