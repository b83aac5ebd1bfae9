"""What the commands read: the effective settings, and the stored sessions in the state directory."""

from __future__ import annotations

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.read_model import view_of_stored
from parallel_coordinator.errors import CoordinatorError, UnknownSessionError
from parallel_coordinator.schemas.outputs import ProgressStatus
from parallel_coordinator.state.store import Store
from parallel_coordinator.views import progress_status


def effective_settings() -> Settings:
    """The settings as the configuration file and PCOORD_* variables make them."""
    from parallel_coordinator.config.file import load_settings

    return load_settings()[0]


def open_store() -> Store:
    settings = effective_settings()
    if not settings.database.exists():
        raise CoordinatorError(
            f"no state at {str(settings.state_dir)!r}: nothing has run here yet (PCOORD_STATE_DIR chooses the place)"
        )
    return Store(settings.database)


def stored_status(store: Store, session_id: str) -> ProgressStatus:
    stored = store.load_session(session_id)
    if stored is None:
        raise UnknownSessionError(session_id)
    settings = effective_settings()
    return progress_status(view_of_stored(stored), settings.result_chars, settings.total_result_chars)

