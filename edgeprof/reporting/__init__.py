"""Reporting: rich tables for the terminal and CSV/JSON/Markdown exports of stored results."""
from .export import FORMATS, export
from .table import headline, results_table

__all__ = ["FORMATS", "export", "headline", "results_table"]
