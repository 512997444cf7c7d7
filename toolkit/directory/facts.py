"""The directory's answers as the diagnosis reads them (pure: loaded from ``directory.json``).

:func:`load_directory` returns ``None`` for a run without a ``directory:`` section, and facts with
``usable=False`` when one was configured but no DC answered; either way the diagnosis then judges SPNs,
account state and domain group membership on what the web servers showed, and says so.
:func:`with_directory` folds the answers into a host's evidence the way the rules already read it:
domain accounts become account records (``source: directory``) and each account's nested domain groups
(tokenGroups) become group entries listing it, so rights and ACLs granted or denied to a domain group
resolve for its members, however deep the nesting.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from toolkit.directory.accounts import AccountState
from toolkit.errors import InputError
from toolkit.identity import same_account

FILE_NAME = "directory.json"


def spn_key(spn: str) -> str:
    """``HTTP/web01.contoso.com:8080`` → ``http/web01.contoso.com`` (the diagnosis compares without ports)."""
    service, _, rest = spn.strip().lower().partition("/")
    return f"{service}/{rest.split('/', 1)[0].split(':', 1)[0]}"


@dataclass(frozen=True)
class DirectoryFacts:
    configured: bool = False
    dc: str | None = None
    netbios: str = ""
    spn_scope: str = ""
    #: spn_key → accounts holding it (``DOMAIN\\sam``), for every SPN asked, empty when nobody holds it
    spn_holders: Mapping[str, frozenset[str]] = field(default_factory=dict)
    accounts: Mapping[str, AccountState | None] = field(default_factory=dict)
    token_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sids: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    queried: dt.datetime | None = None
    #: lower-case UNC path → SDDL read on the file server over SMB (only the paths that were readable)
    shares: Mapping[str, str] = field(default_factory=dict)
    #: since when the domain derives AES keys on a password change (docs/diagnosis.md), None when not known
    aes_keys_since: dt.datetime | None = None
    #: lower-case ``\\\\server\\share`` → the share's own descriptor (SDDL), read from the server's srvsvc
    share_permissions: Mapping[str, str] = field(default_factory=dict)
    #: lower-case shared-configuration folder → (UNC of its applicationHost.config, the file's text)
    shared_configs: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.configured and self.dc is not None

    def qualified(self, sam: str) -> str:
        return f"{self.netbios}\\{sam}" if self.netbios and "\\" not in sam else sam

    def account(self, name: str) -> AccountState | None:
        """The state read for ``name`` (any spelling of it), or None when not asked or not found."""
        for asked, state in self.accounts.items():
            if same_account(asked, name) or (state is not None and same_account(self.qualified(state.sam), name)):
                return state
        return None

    def was_asked(self, name: str) -> bool:
        return any(same_account(asked, name) for asked in self.accounts)

    def source(self) -> str:
        return f"LDAP {self.dc}" if self.dc else "LDAP"


def load_directory(run_path: Path) -> DirectoryFacts | None:
    path = Path(run_path) / FILE_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the directory evidence: {exc}", path=str(path)) from None
    return facts_from_document(doc, str(path))


def facts_from_document(doc: Any, where: str = FILE_NAME) -> DirectoryFacts:
    if not isinstance(doc, Mapping) or doc.get("schema") != "iisfleet.directory/1":
        raise InputError("not an iisfleet.directory/1 document", path=where, field="schema")
    holders: dict[str, set[str]] = {}
    netbios = str(doc.get("netbios") or "")
    for spn, accounts in (doc.get("spn_holders") or {}).items():
        names = holders.setdefault(spn_key(str(spn)), set())
        for who in accounts or []:
            if isinstance(who, Mapping) and who.get("sam"):
                names.add(f"{netbios}\\{who['sam']}" if netbios else str(who["sam"]))
    accounts = {str(k): (AccountState.from_dict(v) if isinstance(v, Mapping) else None)
                for k, v in (doc.get("accounts") or {}).items()}
    groups = {str(k): tuple(str(s) for s in v or []) for k, v in (doc.get("token_groups") or {}).items()}
    errors = tuple(f"{e.get('dc', '?')}: {e.get('category', '?')}: {e.get('message', '')}"[:300]
                   for e in doc.get("errors") or [] if isinstance(e, Mapping))
    queried, aes_since = _utc(doc.get("queried_utc")), _utc(doc.get("aes_keys_since"))
    shares = {str(e["unc"]).lower(): str(e["sddl"]) for e in doc.get("shares") or []
              if isinstance(e, Mapping) and e.get("unc") and isinstance(e.get("sddl"), str)}
    errors += tuple(f"{e.get('unc')}: {(e.get('error') or {}).get('category', '?')}: "
                    f"{(e.get('error') or {}).get('message', '')}"[:300]
                    for e in doc.get("shares") or [] if isinstance(e, Mapping) and e.get("error"))
    share_permissions = {str(e["share"]).lower(): str(e["sddl"]) for e in doc.get("share_permissions") or []
                         if isinstance(e, Mapping) and e.get("share") and isinstance(e.get("sddl"), str)}
    errors += tuple(f"{e.get('share')}: share permissions: {(e.get('error') or {}).get('category', '?')}: "
                    f"{(e.get('error') or {}).get('message', '')}"[:300]
                    for e in doc.get("share_permissions") or [] if isinstance(e, Mapping) and e.get("error"))
    shared = {str(e["folder"]).lower(): (str(e.get("file") or ""), str(e["content"]))
              for e in doc.get("shared_configs") or []
              if isinstance(e, Mapping) and e.get("folder") and isinstance(e.get("content"), str)}
    errors += tuple(f"{e.get('file')}: {(e.get('error') or {}).get('category', '?')}: "
                    f"{(e.get('error') or {}).get('message', '')}"[:300]
                    for e in doc.get("shared_configs") or [] if isinstance(e, Mapping) and e.get("error"))
    return DirectoryFacts(configured=bool(doc.get("configured", True)), dc=doc.get("dc") or None, netbios=netbios,
                          shares=shares, shared_configs=shared, share_permissions=share_permissions,
                          spn_scope=str(doc.get("spn_scope") or ""),
                          spn_holders={k: frozenset(v) for k, v in holders.items()}, accounts=accounts,
                          token_groups=groups, sids={str(k).upper(): str(v) for k, v in (doc.get("sids") or {}).items()},
                          errors=errors, queried=queried, aes_keys_since=aes_since)


def _utc(value: Any) -> dt.datetime | None:
    """An ISO 8601 time (a bare date means its midnight UTC), None when absent or unreadable."""
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def account_record(facts: DirectoryFacts, asked: str, state: AccountState) -> dict[str, Any]:
    """An account record in the shape of Get-LocalUserRight's ``users`` entries, marked as from LDAP."""
    now = facts.queried or dt.datetime.now(dt.timezone.utc)
    return {"name": facts.qualified(state.sam), "sid": state.sid, "enabled": not state.disabled,
            "locked_out": state.locked, "password_expired": state.password_expired or state.must_change_password,
            "account_expires": "expired" if state.expired(now) else None, "source": "directory",
            "problems": state.problems(now), "summary": state.summary(now), "dc": facts.dc or "", "asked": asked}


def with_directory(host: Any, facts: DirectoryFacts | None) -> Any:
    """``host`` (a HostEvidence) with the directory's accounts and nested domain groups folded in, and its
    UNC content descriptors replaced by the ones read on the file servers."""
    if facts is None:
        return host
    host = _with_shares(host, facts)
    if not facts.usable:
        return host
    users: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    for asked, state in sorted(facts.accounts.items()):
        if state is None:
            continue
        users.append(account_record(facts, asked, state))
        member = {"name": facts.qualified(state.sam), "sid": state.sid}
        for sid in facts.token_groups.get(asked, ()):
            if sid.upper().startswith("S-1-5-32-"):
                continue  # the DC's own BUILTIN groups do not apply on a member server
            groups.append({"name": facts.sids.get(sid.upper(), sid), "sid": sid, "members": [member],
                           "source": "directory"})
    return replace(host, users=tuple(users) + tuple(host.users), groups=tuple(host.groups) + tuple(groups))


def with_shared_configuration(run: Any, facts: DirectoryFacts | None) -> Any:
    """``run`` (RunData) with each shared-configuration host's Get-IisConfig envelope reading the shared
    applicationHost.config the controller fetched from the file server, instead of the local copy IIS
    ignores. The host's own web.config files stay; ``shared_configuration_read`` tells the evidence layer
    the configuration in force was read."""
    if facts is None or not facts.shared_configs:
        return run
    from toolkit.diagnose.evidence import _shared_configuration
    from toolkit.directory.smb import parse_unc

    hosts = {}
    for name, record in run.hosts.items():
        envelope = record.envelopes.get("Get-IisConfig")
        data = envelope.get("data") if isinstance(envelope, Mapping) else None
        try:
            shared = _shared_configuration(data) if isinstance(data, Mapping) else None
        except Exception:  # noqa: BLE001 - an unreadable redirection.config stays the evidence layer's to report
            shared = None
        folder = parse_unc(shared.path) if shared is not None and shared.enabled else None
        found = facts.shared_configs.get(folder.unc.lower()) if folder is not None else None
        if found is not None:
            file, text = found
            data = dict(data)  # type: ignore[arg-type]
            size = len(text.encode("utf-8"))
            data["application_host_config"] = {"path": file, "content": {"encoding": "text", "content": text,
                                                                         "bytes": size, "truncated": False}}
            data["shared_configuration_read"] = {"path": file, "source": f"file server {folder.server} over SMB"}
            record = replace(record, envelopes={**record.envelopes, "Get-IisConfig": {**envelope, "data": data}})
        hosts[name] = record
    return replace(run, hosts=hosts)


def _with_shares(host: Any, facts: DirectoryFacts) -> Any:
    if not facts.shares and not facts.share_permissions:
        return host
    from toolkit.directory.smb import parse_unc
    from toolkit.parsers.sddl import parse_sddl

    changed = []
    for content in host.content:
        unc = parse_unc(content.expanded_path) or parse_unc(content.physical_path)
        sddl = facts.shares.get(unc.unc.lower()) if unc is not None else None
        if unc is not None and sddl is not None:
            try:
                content = replace(content, sd=parse_sddl(sddl), exists=True,
                                  sd_source=f"file server {unc.server} over SMB")
            except Exception:  # noqa: BLE001 - keep what the web server saw when the text does not parse
                pass
        share = f"\\\\{unc.server}\\{unc.share}" if unc is not None else ""
        share_sddl = facts.share_permissions.get(share.lower()) if share else None
        if share_sddl is not None:
            try:
                content = replace(content, share_sd=parse_sddl(share_sddl), share_name=share, is_unc=True,
                                  share_sd_source=f"file server {unc.server} (srvsvc NetrShareGetInfo over SMB)")
            except Exception:  # noqa: BLE001 - keep what the web server saw when the text does not parse
                pass
        changed.append(content)
    return replace(host, content=tuple(changed))


__all__ = ["DirectoryFacts", "FILE_NAME", "account_record", "facts_from_document", "load_directory", "spn_key",
           "with_directory", "with_shared_configuration"]
