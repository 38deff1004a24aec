"""Where results live. SQLite by default (`sqlite.ResultStore`), one row per result as it completes."""
from .sqlite import ResultStore, default_db_path

__all__ = ["ResultStore", "default_db_path"]
