"""Reports and figures, drawn from a stored run only."""

from gnndyn.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
