"""Offline IIS log analysis: a streaming W3C/HTTPERR reader and the 401 handshake/terminal classifier.

Public API: :class:`LogAnalyzer` (feed paths or numbered excerpt lines, get a :class:`LogAnalysis`),
:func:`parse_excerpt` for the collector excerpt format, and :func:`iter_records` for every field of every
line by name.
"""

from toolkit.logs.analysis import (ANALYZE_SCHEMA, Group401, LogAnalysis, LogAnalyzer, LogRef, parse_excerpt,
                                   samples_dir)
from toolkit.logs.w3c import Layout, LogFile, Record, discover, iter_records

__all__ = ["LogAnalyzer", "LogAnalysis", "Group401", "LogRef", "parse_excerpt", "iter_records", "Record",
           "Layout", "LogFile", "discover", "ANALYZE_SCHEMA", "samples_dir"]
