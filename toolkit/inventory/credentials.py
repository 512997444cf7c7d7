"""Credential references and their resolution.

An inventory never holds a password: it holds a *reference* saying where the password comes from.
``CredentialRef`` is that reference (validated when the inventory loads); ``CredentialResolver`` turns
references into ``toolkit.models.Credential`` objects when hosts are selected, so only credentials a run
actually needs are looked up, and each one is looked up once (one prompt for 500 hosts).
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from toolkit.errors import InventoryError
from toolkit.models import Credential
from toolkit.secrets import Secret

#: Where a password comes from. ``kerberos``: no password, the ticket cache is used. ``none``: no
#: password at all (SSH key, client certificate). ``plaintext``: only in ``simulated: true`` inventories.
#: ``inline``: a literal ``ansible_password`` found in an Ansible inventory (accepted, with a warning).
SourceKind = Literal["env", "prompt", "keyring", "kerberos", "none", "plaintext", "inline"]

PromptFn = Callable[[str], str]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class CredentialRef:
    """Where a credential's secret comes from. ``origin`` is ``path:line`` for error messages.

    ``reference`` is the env var name (``env``), ``service:user`` (``keyring``) or, for the two kinds
    that carry a value in the file (``plaintext``, ``inline``), a ``Secret`` holding it.
    """

    name: str
    username: str | None
    kind: SourceKind
    reference: str | Secret | None = None
    key_file: str | None = None
    certificate_pem: str | None = None
    certificate_key_pem: str | None = None
    path: str | None = None
    line: int | None = None

    def identity(self) -> tuple[Any, ...]:
        """Two references with the same identity resolve to the same secret (one prompt for both)."""
        reference = self.reference.reveal() if isinstance(self.reference, Secret) else self.reference
        if self.kind == "prompt":
            # Prompts are per credential; for Ansible (no named credentials) per user name.
            return ("prompt", self.name, self.username)
        return (
            self.kind,
            reference,
            self.username,
            self.key_file,
            self.certificate_pem,
            self.certificate_key_pem,
        )

    def describe(self) -> str:
        """A one-line, secret-free description (for `inventory show`-style listings)."""
        where = {
            "env": f"env:{self.reference}",
            "prompt": "prompt",
            "keyring": f"keyring:{self.reference}",
            "kerberos": "kerberos ticket cache",
            "none": "no password",
            "plaintext": "plaintext (simulated inventory)",
            "inline": "inline password in the inventory file",
        }[self.kind]
        return f"{self.username or '-'} ({where})"


class CredentialResolver:
    """Resolve ``CredentialRef`` objects to ``Credential`` objects, once per identity.

    Args:
        prompt: asks the user for a password; receives a question such as
            ``"Password for CONTOSO\\svc (credential ops): "``. ``None`` means no interactive prompt is
            possible and ``{prompt: true}`` credentials fail with ``InventoryError``.
        environ: the environment to read ``{env: NAME}`` references from (default ``os.environ``).
    """

    def __init__(self, prompt: PromptFn | None = None, environ: Mapping[str, str] | None = None) -> None:
        self._prompt = prompt
        self._environ = environ if environ is not None else os.environ
        self._cache: dict[tuple[Any, ...], Secret | None] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: CredentialRef) -> Credential:
        with self._lock:
            key = ref.identity()
            if key not in self._cache:
                self._cache[key] = self._lookup(ref)
            password = self._cache[key]
        return Credential(
            name=ref.name,
            username=ref.username,
            password=password,
            key_file=ref.key_file,
            certificate_pem=ref.certificate_pem,
            certificate_key_pem=ref.certificate_key_pem,
        )

    def _error(
        self, ref: CredentialRef, message: str, field_suffix: str = "password", explanation: str | None = None
    ) -> InventoryError:
        return InventoryError(
            message,
            path=ref.path,
            line=ref.line,
            field=f"credentials.{ref.name}.{field_suffix}",
            explanation=explanation,
        )

    def _lookup(self, ref: CredentialRef) -> Secret | None:
        if ref.kind in ("kerberos", "none"):
            return None
        if ref.kind in ("plaintext", "inline"):
            assert isinstance(ref.reference, Secret)
            return ref.reference
        if ref.kind == "env":
            name = str(ref.reference)
            value = self._environ.get(name)
            if value is None:
                if ref.name.startswith("ansible:"):  # say it in the terms of the inventory the admin wrote
                    raise InventoryError(
                        f"environment variable {name} is not set (ansible_password reads it with "
                        f"lookup('env', '{name}'))", path=ref.path, line=ref.line, field="ansible_password",
                        explanation=f"export {name}=... in the shell that runs iisfleet, as for ansible-playbook.")
                raise self._error(
                    ref,
                    f"environment variable {name} is not set",
                    "password.env",
                    explanation=f"export {name}=... in the shell that runs iisfleet, "
                    "or change the credential to {prompt: true}.",
                )
            if value == "":
                raise self._error(ref, f"environment variable {name} is empty", "password.env")
            return Secret(value)
        if ref.kind == "prompt":
            if self._prompt is None:
                raise self._error(
                    ref,
                    "this credential asks for an interactive prompt, but none is available (not a terminal?)",
                    "password.prompt",
                    explanation="Run iisfleet from a terminal, or use {env: NAME} instead.",
                )
            who = ref.username or ref.name
            answer = self._prompt(f"Password for {who} (credential {ref.name}): ")
            if not answer:
                raise self._error(ref, "no password was entered", "password.prompt")
            return Secret(answer)
        if ref.kind == "keyring":
            return self._from_keyring(ref)
        raise self._error(ref, f"unknown credential source {ref.kind!r}")  # pragma: no cover

    def _from_keyring(self, ref: CredentialRef) -> Secret:
        service, _, user = str(ref.reference).partition(":")
        try:
            keyring: Any = importlib.import_module("keyring")
        except ImportError:
            raise self._error(
                ref,
                "the credential is stored in the system keyring, but the optional "
                "'keyring' package is not installed",
                "password.keyring",
                explanation="pip install 'iisfleet[keyring]'",
            ) from None
        try:
            value = keyring.get_password(service, user)
        except Exception as exc:  # keyring backends raise their own types (locked, no backend, ...)
            raise self._error(
                ref,
                f"keyring lookup for service {service!r}, user {user!r} failed: {type(exc).__name__}",
                "password.keyring",
            ) from None
        if value is None:
            raise self._error(
                ref,
                f"the keyring has no password for service {service!r}, user {user!r}",
                "password.keyring",
                explanation=f"keyring set {service} {user}",
            )
        return Secret(value)


def parse_password_ref(
    value: Any, *, credential: str, simulated: bool, path: str, line: int
) -> tuple[SourceKind, str | Secret | None]:
    """Validate an iisfleet ``password:`` value; return its kind and reference.

    Raises:
        InventoryError: a bare string (inline password), an unknown form, or ``plaintext`` outside a
            ``simulated: true`` inventory.
    """
    field = f"credentials.{credential}.password"
    if isinstance(value, str):
        raise InventoryError(
            "a password must be a reference, not a value: use {env: NAME}, "
            '{prompt: true} or {keyring: "service:user"}',
            path=path,
            line=line,
            field=field,
        )
    if not isinstance(value, dict) or len(value) != 1:
        raise InventoryError(
            "expected exactly one of {env: NAME}, {prompt: true}, "
            '{keyring: "service:user"}, {plaintext: ...}',
            path=path,
            line=line,
            field=field,
        )
    ((kind, ref),) = value.items()
    if kind == "env":
        if not isinstance(ref, str) or not _ENV_NAME.match(ref):
            raise InventoryError(
                f"not an environment variable name: {ref!r}", path=path, line=line, field=f"{field}.env"
            )
        return "env", ref
    if kind == "prompt":
        if ref is not True:
            raise InventoryError("use {prompt: true}", path=path, line=line, field=f"{field}.prompt")
        return "prompt", None
    if kind == "keyring":
        if not isinstance(ref, str) or ":" not in ref or ref.startswith(":") or ref.endswith(":"):
            raise InventoryError('expected "service:user"', path=path, line=line, field=f"{field}.keyring")
        return "keyring", ref
    if kind == "plaintext":
        if not simulated:
            raise InventoryError(
                "plaintext passwords are allowed only in simulated (lab) inventories with 'simulated: true'",
                path=path,
                line=line,
                field=f"{field}.plaintext",
                explanation="Use {env: NAME}, {prompt: true} or {keyring: ...} for real hosts.",
            )
        if not isinstance(ref, str) or not ref:
            raise InventoryError(
                "expected a non-empty string", path=path, line=line, field=f"{field}.plaintext"
            )
        return "plaintext", Secret(ref)
    raise InventoryError(
        f"unknown password source {kind!r} (expected env, prompt, keyring or plaintext)",
        path=path,
        line=line,
        field=field,
    )
