"""iisfleet: explain every HTTP 401 across a fleet of IIS servers.

The package is layered: ``transports`` reach hosts, ``collectors``/``contract`` describe and validate
what the bundled PowerShell returns, ``parsers`` turn raw artefacts into typed evidence, ``diagnose``
turns evidence into findings, ``report`` renders them, and only ``toolkit.cli`` prints or exits.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
