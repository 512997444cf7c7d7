"""Inventories: which hosts to reach, how, and with which credential references.

``load_inventory`` reads iisfleet's own YAML format (docs/contracts.md §3) or an Ansible inventory
(INI, YAML, or a directory of them, with ``group_vars/``/``host_vars/``) and validates it completely;
``Inventory.select(limit)`` picks hosts and resolves their credentials into ``toolkit.models.Credential``
objects whose passwords are ``toolkit.secrets.Secret``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from toolkit.errors import InventoryError
from toolkit.inventory.ansible import load_ansible
from toolkit.inventory.credentials import CredentialRef, CredentialResolver, PromptFn
from toolkit.inventory.limit import select_names
from toolkit.inventory.model import HostEntry, Inventory
from toolkit.inventory.native import load_native, looks_native
from toolkit.inventory.yamlsource import parse_yaml, read_text_file

__all__ = [
    "CredentialRef",
    "CredentialResolver",
    "HostEntry",
    "Inventory",
    "load_inventory",
    "select_names",
]


def load_inventory(
    path: Path | str, *, prompt: PromptFn | None = None, environ: Mapping[str, str] | None = None
) -> Inventory:
    """Load and validate an inventory file (or an Ansible inventory directory).

    The format is detected from the content: a YAML mapping with ``simulated``, ``defaults``,
    ``credentials`` or ``groups`` at the top is iisfleet's format; other YAML is an Ansible YAML
    inventory; anything else is Ansible INI.

    Args:
        prompt: asks for a password, once per ``{prompt: true}`` credential, when ``select`` needs it.
        environ: where ``{env: NAME}`` references are read (default ``os.environ``), at ``select`` time.

    Raises:
        InventoryError: naming file, line and field for anything that does not validate.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InventoryError("inventory not found", path=str(path))
    if path.is_dir():
        inventory = load_ansible(path)
    else:
        text = read_text_file(path, error=InventoryError, what="inventory")
        if path.suffix.lower() in (".yml", ".yaml", ".json"):
            document = parse_yaml(text, str(path), error=InventoryError)
            if document is None:
                raise InventoryError("the inventory is empty", path=str(path), line=1)
            inventory = (
                load_native(path, document)
                if looks_native(document)
                else load_ansible(path, document=document)
            )
        else:
            inventory = load_ansible(path, text=text)
    inventory.resolver = CredentialResolver(prompt=prompt, environ=environ)
    return inventory
