"""Tools that refuse arguments they do not take, instead of ignoring them as the SDK's argument model does.

A misspelt `subtask` for `subtasks`, silently dropped, would route the whole task to one agent and
answer SUCCESS: the caller must hear about it, with the name it probably meant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool

from parallel_coordinator.errors import UnknownArgumentError


class StrictTool(Tool):
    """An SDK tool whose published schema says `additionalProperties: false`, and whose calls keep to it."""

    async def run(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False) -> Any:
        known = self.argument_names()
        unknown = [name for name in arguments if name not in known]
        if unknown:
            # Worded like the SDK's own argument errors, which carry the same prefix.
            raise ToolError(f"Error executing tool {self.name}: {UnknownArgumentError(self.name, unknown, known)}")
        return await super().run(arguments, context, convert_result=convert_result)

    def argument_names(self) -> list[str]:
        """The names a call may pass, in signature order (aliases where the SDK gave one)."""
        fields = self.fn_metadata.arg_model.model_fields
        return [field.alias or name for name, field in fields.items()]


def strict_tool(fn: Callable[..., Any], **options: Any) -> StrictTool:
    tool = StrictTool.from_function(fn, **options)
    if not isinstance(tool, StrictTool):  # from_function builds the class it is called on
        raise TypeError(f"expected a StrictTool, got {type(tool).__name__}")
    tool.parameters = {**tool.parameters, "additionalProperties": False}
    return tool
