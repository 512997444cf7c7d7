"""Domain facts read from the domain controllers, on the controller (never through a web server).

``setspn -L`` on a web server is a second hop to a DC that fails without delegation and only lists the
accounts it is given; account state inferred from 4625 records and local data misses the domain's view.
This package asks the DCs directly, with the run's credentials:

* :mod:`toolkit.directory.config`: the inventory's ``directory:`` section;
* :mod:`toolkit.directory.ldap`: LDAP(S) sessions (msldap for NTLM, ldap3 + GSSAPI for Kerberos and
  simple binds; why in docs/directory.md);
* :mod:`toolkit.directory.collect`: what the fleet's evidence needs and the queries, kept as evidence;
* :mod:`toolkit.directory.accounts`: what account attributes mean;
* :mod:`toolkit.directory.facts`: the answers as the (pure) diagnosis reads them;
* :mod:`toolkit.directory.smb`: share and NTFS security descriptors from the file servers over SMB.

:func:`collect_for_run` is the one call a run makes after its hosts finished.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from toolkit.directory.config import DirectoryConfig

__all__ = ["DirectoryConfig", "collect_for_run"]


def collect_for_run(run_dir: Path, config: DirectoryConfig, credential: Any) -> dict[str, Any]:
    """Read the run's host evidence, ask the directory what it needs, write ``directory.json``.

    Never raises for directory failures: they are recorded in the document (``errors``) and the diagnosis
    falls back to weaker evidence, saying so.
    """
    from toolkit.diagnose.evidence import evidence_from_run
    from toolkit.directory.collect import collect, needs_from_hosts
    from toolkit.directory.smb import collect_file_servers
    from toolkit.directory.facts import FILE_NAME
    from toolkit.rundir import load_run, write_json_atomic

    hosts = evidence_from_run(load_run(Path(run_dir)))
    needs = needs_from_hosts(hosts)
    files = collect_file_servers(config, credential, hosts)
    for entry in files["shares"] + files["share_permissions"]:  # ACEs name domain SIDs the directory must name
        needs.sids |= set(re.findall(r"S-1-5-21-[0-9-]+", str(entry.get("sddl") or "")))
    document = collect(config, credential, needs)
    document.update(files)
    write_json_atomic(Path(run_dir) / FILE_NAME, document)
    return document
