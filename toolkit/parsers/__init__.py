"""Evidence parsers: raw collector artefacts → the typed records of :mod:`toolkit.parsers.types`.

Pure functions, one module per artefact: ``iisconfig`` (applicationHost.config + web.config),
``secedit`` and ``rights`` (user rights), ``sddl`` (content ACLs), ``setspn`` (SPNs), ``freb``
(Failed Request Tracing) and ``events`` (4625 records, event-log state). Every parser treats its
input as untrusted and raises :class:`toolkit.errors.InputError` (with path and line) on garbage.
"""
