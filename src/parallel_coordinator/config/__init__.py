"""Configuration: the server's settings (settings.py) and the file they are read from (file.py, schema.py)."""

from parallel_coordinator.config.file import find_config_file, load_settings, read_config_file, search_paths
from parallel_coordinator.config.settings import AgentOverrides, Settings, default_state_dir

__all__ = [
    "AgentOverrides",
    "Settings",
    "default_state_dir",
    "find_config_file",
    "load_settings",
    "read_config_file",
    "search_paths",
]
