"""What the lab adds when the target-side C# core answers a collector (``ModelBackend._from_core``).

* :func:`with_defaults`: the parameters as the wrapper's ``param()`` block hands them to the core (every
  sidecar default, overridden by what the controller bound).
* :func:`lab_only_parameters`: what the lab's stand-ins for Windows-only readers need from the host model
  (never sent to a real host): Get-IisContentAcl's descriptors come from the model's ``acls`` and ``shares``
  (``toolkit/lab/targethost/ContentAclEntry.cs``), and Get-IisRawArtefact's owners from the same ``acls``;
  Get-IisCertificate's HTTP.sys SSL table and LocalMachine stores come from the host's ``ssl_bindings`` and
  ``certstore/`` files, re-issued to the presented clock (``toolkit/lab/certstore.py``,
  ``toolkit/lab/targethost/CertificateEntry.cs``).
"""

from __future__ import annotations

from typing import Any

#: The descriptor a path gets when the host model gives neither it nor a parent one (SYSTEM and
#: Administrators full control, Users read and execute).
DEFAULT_SDDL = "O:BAG:SYD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1200a9;;;BU)"


def with_defaults(collector: Any, bound: dict[str, Any]) -> dict[str, Any]:
    """The parameters as the script sees them: every sidecar default, overridden by what was bound."""
    values = {spec.name: spec.default for spec in getattr(collector, "parameters", ())}
    values.update(bound)
    return values


def lab_only_parameters(collector_id: str, host: Any, presented: Any = None) -> dict[str, Any]:
    if collector_id == "Get-IisCertificate":
        folder, lines = presented.certificates(host.directory, host.ssl_bindings)
        return {"__SslBindings": lines, "__CertificateFolder": folder}
    if collector_id == "Get-IisRawArtefact":  # owners come from the same descriptors
        return {"__Acls": [f"{path}\t{sddl}" for path, sddl in sorted(host.acls.items())], "__DefaultSddl": DEFAULT_SDDL}
    if collector_id != "Get-IisContentAcl":
        return {}
    return {"__Acls": [f"{path}\t{sddl}" for path, sddl in sorted(host.acls.items())],
            "__Shares": [f"{share}\t{sddl}" for share, sddl in sorted(host.shares.items())],
            "__DefaultSddl": DEFAULT_SDDL}
