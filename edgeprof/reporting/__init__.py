"""Reporting: rich tables for the terminal and CSV/JSON/Markdown exports of stored results."""
from .export import FORMATS, export, flat_row, to_dataframe
from .table import headline, results_table

__all__ = ["FORMATS", "export", "flat_row", "headline", "results_table", "to_dataframe"]
