"""UNC content and shared configuration read from the file server itself, over SMB, from the controller.

Get-IisContentAcl reads a UNC path's descriptor *through the web server*: a second hop that needs
delegation, admin rights on the file server and Remote Registry, and over WinRM it usually comes back
``not-found``. Here the controller opens the path on the file server with the run's credentials
(NTLM, or Kerberos from the ticket cache) and asks for its security descriptor with SMB2 QUERY_INFO
(OWNER | GROUP | DACL), the same answer Explorer's Security tab shows.

The descriptor is parsed here (:func:`sd_to_sddl`), not with smbprotocol's SMB2CreateSDBuffer: that
rejects ACL revision 3 (ACL_REVISION_DS), which Samba's smbcacls writes and Windows accepts, so a
tolerant reader is needed for real-world descriptors. The result is SDDL, which the rest of iisfleet
already reads (toolkit/parsers/sddl.py); SIDs are named through the directory.

:func:`read_file` reads a whole file (the redirected ``applicationHost.config`` of a shared-configuration
farm) the same way.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from toolkit.directory.config import DirectoryConfig
from toolkit.directory.ldap import DirectoryError, _classify, _clean, sid_from_bytes

OWNER_SECURITY_INFORMATION = 0x1
GROUP_SECURITY_INFORMATION = 0x2
DACL_SECURITY_INFORMATION = 0x4
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_PATHS = 500

_ACE_TYPES = {0x0: "A", 0x1: "D", 0x5: "OA", 0x6: "OD", 0x9: "XA", 0xA: "XD"}
_ACE_FLAGS = ((0x1, "OI"), (0x2, "CI"), (0x4, "NP"), (0x8, "IO"), (0x10, "ID"))
_SE_DACL_PRESENT = 0x4
_SE_DACL_PROTECTED = 0x1000
_SE_DACL_AUTO_INHERITED = 0x400


def sd_to_sddl(data: bytes) -> str:
    """A self-relative SECURITY_DESCRIPTOR → SDDL (owner, group, DACL; rights as hex masks).

    Tolerates any ACL revision. Object ACEs (types 5/6) are kept with their SID and mask; their GUIDs do
    not matter for file access. Raises ValueError on a truncated or inconsistent descriptor.
    """
    if len(data) < 20:
        raise ValueError("security descriptor shorter than its header")
    _revision, _sbz, control, o_owner, o_group, _o_sacl, o_dacl = struct.unpack_from("<BBHIIII", data, 0)
    out = []
    if o_owner:
        out.append("O:" + sid_from_bytes(data[o_owner:]))
    if o_group:
        out.append("G:" + sid_from_bytes(data[o_group:]))
    if control & _SE_DACL_PRESENT:
        flags = ("P" if control & _SE_DACL_PROTECTED else "") + ("AI" if control & _SE_DACL_AUTO_INHERITED else "")
        if not o_dacl:
            out.append(f"D:{flags}NO_ACCESS_CONTROL")
        else:
            out.append(f"D:{flags}" + "".join(_aces(data, o_dacl)))
    return "".join(out)


def _aces(data: bytes, offset: int) -> Iterable[str]:
    if offset + 8 > len(data):
        raise ValueError("ACL header beyond the descriptor")
    _rev, _sbz, size, count, _sbz2 = struct.unpack_from("<BBHHH", data, offset)
    end = min(len(data), offset + size)
    position = offset + 8
    for _ in range(count):
        if position + 8 > end:
            raise ValueError("ACE beyond its ACL")
        ace_type, ace_flags, ace_size = struct.unpack_from("<BBH", data, position)
        if ace_size < 8 or position + ace_size > end:
            raise ValueError("ACE with an impossible size")
        mask = struct.unpack_from("<I", data, position + 4)[0]
        sid_at = position + 8
        if ace_type in (0x5, 0x6):  # object ACE: flags, then up to two GUIDs, then the SID
            object_flags = struct.unpack_from("<I", data, sid_at)[0]
            sid_at += 4 + (16 if object_flags & 0x1 else 0) + (16 if object_flags & 0x2 else 0)
        kind = _ACE_TYPES.get(ace_type)
        if kind is not None:
            flags = "".join(name for bit, name in _ACE_FLAGS if ace_flags & bit)
            yield f"({kind};{flags};0x{mask:x};;;{sid_from_bytes(data[sid_at:position + ace_size])})"
        position += ace_size


@dataclass(frozen=True)
class UncPath:
    server: str
    share: str
    path: str  # inside the share, backslash-separated, "" for the share root

    @property
    def unc(self) -> str:
        return f"\\\\{self.server}\\{self.share}" + (f"\\{self.path}" if self.path else "")


def parse_unc(text: str) -> UncPath | None:
    """``\\\\fs01\\content\\reports`` → (fs01, content, reports); None for anything that is not a UNC path."""
    raw = (text or "").strip().replace("/", "\\")
    if not raw.startswith("\\\\") or raw.startswith("\\\\?\\") or raw.startswith("\\\\.\\"):
        return None
    parts = [p for p in raw[2:].split("\\") if p]
    if len(parts) < 2:
        return None
    return UncPath(parts[0], parts[1], "\\".join(parts[2:]))


class SmbReader:
    """One SMB session per file server; opens paths read-only (READ_CONTROL / FILE_READ_DATA)."""

    def __init__(self, config: DirectoryConfig, credential: Any, *, port: int = 445) -> None:
        self.config = config
        self.credential = credential
        self.port = port
        self._sessions: dict[str, Any] = {}

    def _session(self, server: str) -> Any:
        from smbprotocol.connection import Connection
        from smbprotocol.session import Session

        if server in self._sessions:
            return self._sessions[server]
        try:
            connection = Connection(uuid.uuid4(), server, self.port)
            connection.connect(timeout=int(self.config.timeout))
            if self.config.auth == "kerberos":
                session = Session(connection, None, None, auth_protocol="kerberos")
            else:
                username = self.credential.username if self.credential else None
                password = self.credential.password.reveal() if self.credential and self.credential.password \
                    else None
                session = Session(connection, username, password, auth_protocol="ntlm")
            session.connect()
        except Exception as exc:  # noqa: BLE001 - every library failure becomes one categorised error
            raise DirectoryError(_clean(f"SMB session to {server} failed: {exc}", self.credential),
                                 kind=_classify(exc), dc=server) from None
        self._sessions[server] = (connection, session, {})
        return self._sessions[server]

    def _tree(self, unc: UncPath) -> Any:
        from smbprotocol.tree import TreeConnect

        _connection, session, trees = self._session(unc.server)
        key = unc.share.lower()
        if key not in trees:
            tree = TreeConnect(session, f"\\\\{unc.server}\\{unc.share}")
            try:
                tree.connect()
            except Exception as exc:  # noqa: BLE001
                raise DirectoryError(_clean(f"cannot open the share \\\\{unc.server}\\{unc.share}: {exc}",
                                            self.credential), kind=_access_kind(exc), dc=unc.server) from None
            trees[key] = tree
        return trees[key]

    @contextmanager
    def _open(self, unc: UncPath, access: int, directory: bool | None) -> Any:
        from smbprotocol.open import (CreateDisposition, CreateOptions, ImpersonationLevel, Open, ShareAccess)

        tree = self._tree(unc)
        options = [CreateOptions.FILE_DIRECTORY_FILE, CreateOptions.FILE_NON_DIRECTORY_FILE] if directory is None \
            else [CreateOptions.FILE_DIRECTORY_FILE if directory else CreateOptions.FILE_NON_DIRECTORY_FILE]
        last: Exception | None = None
        for option in options:
            handle = Open(tree, unc.path)
            try:
                handle.create(ImpersonationLevel.Impersonation, access, 0,
                              ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE,
                              CreateDisposition.FILE_OPEN, option)
            except Exception as exc:  # noqa: BLE001 - try the other kind (file vs directory)
                last = exc
                continue
            try:
                yield handle
            finally:
                handle.close()
            return
        raise DirectoryError(_clean(f"cannot open {unc.unc}: {last}", self.credential),
                             kind=_access_kind(last), dc=unc.server)

    def security_descriptor(self, unc: UncPath) -> str:
        """The path's descriptor as SDDL (owner, group, DACL), read on the file server."""
        from smbprotocol.file_info import InfoType
        from smbprotocol.open import FilePipePrinterAccessMask, SMB2QueryInfoRequest, SMB2QueryInfoResponse

        with self._open(unc, FilePipePrinterAccessMask.READ_CONTROL, None) as handle:
            request = SMB2QueryInfoRequest()
            request["info_type"] = InfoType.SMB2_0_INFO_SECURITY
            request["output_buffer_length"] = 65535
            request["additional_information"] = (OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION
                                                 | DACL_SECURITY_INFORMATION)
            request["file_id"] = handle.file_id
            tree = handle.tree_connect
            connection = tree.session.connection
            try:
                sent = connection.send(request, sid=tree.session.session_id, tid=tree.tree_connect_id)
                response = SMB2QueryInfoResponse()
                response.unpack(connection.receive(sent)["data"].get_value())
            except Exception as exc:  # noqa: BLE001
                raise DirectoryError(_clean(f"cannot read the security of {unc.unc}: {exc}", self.credential),
                                     kind=_access_kind(exc), dc=unc.server) from None
        try:
            return sd_to_sddl(bytes(response["buffer"].get_value()))
        except ValueError as exc:
            raise DirectoryError(f"unreadable security descriptor for {unc.unc}: {exc}", dc=unc.server) from None

    def read_file(self, unc: UncPath, limit: int = MAX_FILE_BYTES) -> bytes:
        from smbprotocol.open import FilePipePrinterAccessMask

        access = FilePipePrinterAccessMask.FILE_READ_DATA | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
        with self._open(unc, access, False) as handle:
            size = min(int(handle.end_of_file or 0), limit)
            chunks, offset = [], 0
            step = max(1, min(size, handle.connection.max_read_size)) if size else 0
            while offset < size:
                chunk = handle.read(offset, min(step, size - offset))
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
            return b"".join(chunks)

    def close(self) -> None:
        for connection, _session, _trees in self._sessions.values():
            try:
                connection.disconnect()
            except Exception:  # noqa: BLE001 - closing a dead connection is not an error
                pass
        self._sessions.clear()


def _access_kind(exc: BaseException | None) -> str:
    text = f"{type(exc).__name__} {exc}".lower()
    if "access_denied" in text or "access is denied" in text:
        return "access-denied"
    if "not_found" in text or "no such" in text or "bad_network_name" in text or "object_name" in text:
        return "not-found"
    return _classify(exc) if exc is not None else "protocol"


def unc_paths(hosts: Mapping[str, Any]) -> list[str]:
    """Every UNC content path of the collected hosts (physical paths that are UNC)."""
    seen: dict[str, str] = {}
    for host in hosts.values():
        for content in host.content:
            for text in (content.expanded_path, content.physical_path):
                unc = parse_unc(text)
                if unc is not None:
                    seen.setdefault(unc.unc.lower(), unc.unc)
                    break
        if host.config is not None:
            for site in host.config.sites:
                for app in site.applications:
                    for vdir in app.virtual_directories:
                        unc = parse_unc(vdir.physical_path)
                        if unc is not None:
                            seen.setdefault(unc.unc.lower(), unc.unc)
    return [seen[k] for k in sorted(seen)][:MAX_PATHS]


def collect_shares(config: DirectoryConfig, credential: Any, hosts: Mapping[str, Any],
                   reader: SmbReader | None = None) -> list[dict[str, Any]]:
    """Each UNC content path's descriptor from its file server: ``[{unc, sddl} | {unc, error}]``."""
    return collect_file_servers(config, credential, hosts, reader)["shares"]


def collect_file_servers(config: DirectoryConfig, credential: Any, hosts: Mapping[str, Any],
                         reader: SmbReader | None = None) -> dict[str, list[dict[str, Any]]]:
    """What the file servers hold for the fleet: ``shares`` (each UNC content path's descriptor) and
    ``shared_configs`` (the applicationHost.config a shared-configuration farm's redirection.config points
    at, read whole, with the hosts that use it). Failures are recorded per path, never raised."""
    paths = unc_paths(hosts)
    farms: dict[str, list[str]] = {}
    for name, host in sorted(hosts.items()):
        folder = parse_unc(getattr(host, "shared_config", None) or "")
        if folder is not None:
            farms.setdefault(folder.unc.lower(), []).append(name)
    out: dict[str, list[dict[str, Any]]] = {"shares": [], "shared_configs": []}
    if not paths and not farms:
        return out
    reader = reader or SmbReader(config, credential)
    try:
        for text in paths:
            unc = parse_unc(text)
            assert unc is not None
            try:
                out["shares"].append({"unc": unc.unc, "server": unc.server, "sddl": reader.security_descriptor(unc)})
            except DirectoryError as exc:
                out["shares"].append({"unc": unc.unc, "server": unc.server,
                                      "error": {"category": exc.kind, "message": str(exc)}})
        for key, names in sorted(farms.items()):
            folder = parse_unc(key)
            assert folder is not None
            file = UncPath(folder.server, folder.share, "\\".join(p for p in (folder.path, "applicationHost.config") if p))
            record: dict[str, Any] = {"folder": folder.unc, "file": file.unc, "server": folder.server, "hosts": names}
            try:
                data = reader.read_file(file)
                record.update(bytes=len(data), content=data.decode("utf-8-sig", errors="replace"))
            except DirectoryError as exc:
                record["error"] = {"category": exc.kind, "message": str(exc)}
            out["shared_configs"].append(record)
    finally:
        reader.close()
    return out
