"""Just Enough Administration (JEA): the endpoint iisfleet ships, and what each right buys.

``export``   writes the PowerShell module, role capability (.psrc), session configuration (.pssc) and
             README an admin registers on each web server (iisfleet never registers anything itself).
``psd1``     reads the PowerShell data files those are (hashtable literals), for the lab and the checks.
``rights``   which collectors need which right, and what a missing right costs.

The facts this design rests on, with their sources, are in docs/jea.md.
"""

from __future__ import annotations

#: The module the export writes; the .psrc lives in its RoleCapabilities folder.
MODULE_NAME = "IisFleet"
#: The role capability's base name (the .psrc file name without extension).
ROLE_NAME = "IisFleetCollector"
#: The endpoint (session configuration) name the README registers and ``jea: true`` hosts connect to.
DEFAULT_ENDPOINT = "IisFleet"


def function_name(collector_id: str) -> str:
    """The module function that runs collector ``collector_id`` (collector ids are already Verb-Noun)."""
    return collector_id


__all__ = ["DEFAULT_ENDPOINT", "MODULE_NAME", "ROLE_NAME", "function_name"]
