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
farm) the same way. :meth:`SmbReader.share_security` reads the share's own permissions from the server's
Server Service over ``\\pipe\\srvsvc`` (DCE/RPC in :mod:`toolkit.directory.srvsvc`). With Kerberos the
ticket is for ``cifs/<the UNC's server name>``.
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

    def __init__(self, config: DirectoryConfig, credential: Any, *, port: int = 445,
                 addresses: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.credential = credential
        self.port = port
        #: where to connect for a server name, instead of DNS; the name still makes the Kerberos SPN
        #: (``cifs/<name>``). By default the directory's ``tls_name`` is known to live at its first DC.
        self.addresses = {k.lower(): v for k, v in (addresses if addresses is not None else _dc_address(config)).items()}
        self._sessions: dict[str, Any] = {}

    def _session(self, server: str) -> Any:
        from smbprotocol.connection import Connection
        from smbprotocol.session import Session

        if server in self._sessions:
            return self._sessions[server]
        if self.config.auth == "kerberos" and _is_address(server):
            raise DirectoryError(f"Kerberos needs the file server's name, not the address {server} (no SPN names "
                                 f"an address; Windows falls back to NTLM there): use the name in the UNC path, or "
                                 f"auth: ntlm", kind="auth", dc=server)
        try:
            connection = Connection(uuid.uuid4(), self.addresses.get(server.lower(), server), self.port)
            connection.connect(timeout=int(self.config.timeout))
            if self.config.auth == "kerberos":
                # the ticket is for cifs/<the UNC's server name>, whatever address the connection went to
                session = Session(connection, None, None, auth_protocol="kerberos", hostname_override=server)
            else:
                username = self.credential.username if self.credential else None
                password = self.credential.password.reveal() if self.credential and self.credential.password \
                    else None
                session = Session(connection, username, password, auth_protocol="ntlm")
            session.connect()
        except Exception as exc:  # noqa: BLE001 - every library failure becomes one categorised error
            reason = _kerberos_reason(exc) if self.config.auth == "kerberos" else None
            if reason is not None:
                raise DirectoryError(f"Kerberos logon to the file server {server} failed: {reason} (the ticket asked "
                                     f"for was cifs/{server})", kind="auth", dc=server) from None
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

    def share_security(self, server: str, share: str) -> ShareSecurity:
        """The share-level descriptor ("Share Permissions") of ``\\\\server\\share``, asked of the server's
        Server Service (NetrShareGetInfo over ``\\pipe\\srvsvc`` on IPC$, :mod:`toolkit.directory.srvsvc`).

        Level 502 carries the descriptor but the server answers it only to Administrators, Server Operators
        or Power Users; on ``access denied`` the same question is asked at level 2, then 1, so the answer
        still says whether the share exists, and ``sddl`` stays None with ``note`` saying why. The RPC
        rides the SMB session, so it has the session's protection: iisfleet's sessions require signing and
        ask for SMB 3 encryption (``protection`` says which one the server agreed to)."""
        from toolkit.directory import srvsvc

        _connection, session, _trees = self._session(server)
        protection = "SMB3 encryption" if getattr(session, "encrypt_data", False) else \
            "SMB signing" if getattr(session, "signing_required", False) else "none"
        try:
            with self._pipe(UncPath(server, "IPC$", ""), "srvsvc") as pipe:
                return ask_share_security(pipe, server, share, protection)
        except srvsvc.RpcError as exc:
            kind = "access-denied" if exc.status == srvsvc.ERROR_ACCESS_DENIED else "protocol"
            raise DirectoryError(f"srvsvc on {server}: {exc}", kind=kind, dc=server) from None
        except DirectoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - an SMB failure on the pipe (closed, refused, timed out)
            raise DirectoryError(_clean(f"srvsvc on {server}: {exc}", self.credential), kind=_access_kind(exc),
                                 dc=server) from None

    @contextmanager
    def _pipe(self, unc: UncPath, name: str) -> Any:
        """A named pipe on IPC$ opened for reading and writing (a pipe is neither file nor directory)."""
        from smbprotocol.open import (CreateDisposition, FilePipePrinterAccessMask, ImpersonationLevel, Open,
                                      ShareAccess)

        tree = self._tree(unc)
        handle = Open(tree, name)
        access = (FilePipePrinterAccessMask.FILE_READ_DATA | FilePipePrinterAccessMask.FILE_WRITE_DATA
                  | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES | FilePipePrinterAccessMask.READ_CONTROL)
        try:
            handle.create(ImpersonationLevel.Impersonation, access, 0,
                          ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE, CreateDisposition.FILE_OPEN, 0)
        except Exception as exc:  # noqa: BLE001
            raise DirectoryError(_clean(f"cannot open \\pipe\\{name} on {unc.server}: {exc}", self.credential),
                                 kind=_access_kind(exc), dc=unc.server) from None
        try:
            yield handle
        finally:
            try:
                handle.close()
            except Exception:  # noqa: BLE001 - the answer is in; a failing close changes nothing
                pass

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


@dataclass(frozen=True)
class ShareSecurity:
    server: str
    share: str
    level: int  # the NetrShareGetInfo level that answered: 502 with the descriptor, 2 or 1 without
    sddl: str | None  # the share's descriptor as SDDL (level 502), None when it could not be read
    note: str = ""  # why ``sddl`` is None
    path: str = ""  # the share's local path on the server (levels 2 and 502)
    protection: str = ""  # what protected the RPC: "SMB3 encryption", "SMB signing" or "none"

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"share": f"\\\\{self.server}\\{self.share}", "server": self.server,
                               "level": self.level, "protection": self.protection}
        if self.path:
            out["path"] = self.path
        if self.sddl is not None:
            out["sddl"] = self.sddl
        else:
            out["error"] = {"category": "access-denied", "message": self.note}
        return out


def ask_share_security(pipe: Any, server: str, share: str, protection: str = "") -> ShareSecurity:
    """Bind to SRVSVC over an open ``srvsvc`` pipe (anything with smbprotocol's ``Open.write``/``read``) and ask
    NetrShareGetInfo at level 502, falling back to 2 and 1 when the server refuses it. Raises RpcError for a
    broken exchange and DirectoryError for a missing share or another refusal."""
    from toolkit.directory import srvsvc

    denied: int | None = None
    call = _PipeCall(pipe)
    call.bind()
    for level in (502, 2, 1):
        info = call.share_get_info(server, share, level)
        if info.status == srvsvc.ERROR_ACCESS_DENIED and level != 1:
            denied = denied or level
            continue
        break
    if info.status in srvsvc.NO_SUCH_SHARE:
        raise DirectoryError(f"{server} has no share named {share} (NetrShareGetInfo: no such share)",
                             kind="not-found", dc=server)
    if info.status != 0:
        kind = "access-denied" if info.status == srvsvc.ERROR_ACCESS_DENIED else "protocol"
        raise DirectoryError(f"NetrShareGetInfo for \\\\{server}\\{share} at level {info.level}: "
                             f"{info.status_text}", kind=kind, dc=server)
    sddl, note = None, ""
    if denied is not None:
        note = (f"{server} refused level {denied} to this account: only Administrators, Server Operators or "
                f"Power Users of the file server may read a share's permissions; level {info.level} answered, "
                f"so the share exists")
    elif not info.security_descriptor:
        # Windows always keeps a descriptor for a share; Samba 4.17 answers a NULL one to an account that
        # may not read it. So NULL means "not disclosed", never "no restriction".
        note = f"{server} answered level 502 without a descriptor (not disclosed to this account)"
    else:
        try:
            sddl = sd_to_sddl(info.security_descriptor)
        except ValueError as exc:
            raise DirectoryError(f"unreadable share descriptor of \\\\{server}\\{share}: {exc}",
                                 dc=server) from None
    return ShareSecurity(server=server, share=info.name or share, level=info.level, sddl=sddl, note=note,
                         path=info.path, protection=protection)


class _PipeCall:
    """DCE/RPC calls over one open srvsvc pipe: PDUs written as pipe messages, answers read back."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.call_id = 0
        self.max_fragment = 4280
        self.buffer = b""

    def _exchange(self, pdus: list[bytes]) -> list[Any]:
        from toolkit.directory import srvsvc

        for pdu in pdus:
            self.pipe.write(pdu, 0)
        answers = []
        while not answers or not answers[-1].last:
            while True:
                if len(self.buffer) >= srvsvc.HEADER.size:
                    length = struct.unpack_from("<H", self.buffer, 8)[0]
                    if len(self.buffer) >= length:
                        break
                chunk = self.pipe.read(0, min(65536, self.pipe.connection.max_read_size))
                if not chunk:
                    raise srvsvc.RpcError("the pipe closed before the answer was complete")
                self.buffer += bytes(chunk)
            length = struct.unpack_from("<H", self.buffer, 8)[0]
            pdu, self.buffer = srvsvc.parse_pdu(self.buffer[:length]), self.buffer[length:]
            answers.append(pdu)
            if pdu.ptype in (srvsvc.PTYPE_BIND_ACK, srvsvc.PTYPE_BIND_NAK, srvsvc.PTYPE_FAULT):
                break
        return answers

    def bind(self) -> None:
        from toolkit.directory import srvsvc

        self.call_id += 1
        answer = self._exchange([srvsvc.bind(self.call_id)])[0]
        self.max_fragment = min(self.max_fragment, srvsvc.check_bind_ack(answer)) or self.max_fragment

    def share_get_info(self, server: str, share: str, level: int) -> Any:
        from toolkit.directory import srvsvc

        self.call_id += 1
        stub = srvsvc.share_get_info_stub(server, share, level)
        answers = self._exchange(srvsvc.request(self.call_id, srvsvc.OPNUM_NETR_SHARE_GET_INFO, stub,
                                                self.max_fragment))
        return srvsvc.parse_share_get_info(srvsvc.response_stub(answers, self.call_id), level)


def _kerberos_reason(exc: BaseException) -> str | None:
    """The KDC's or the ticket cache's own words from a GSSAPI failure (pyspnego wraps them as
    ``Minor (<code>): <text>, Context: ...``), with what to do for the common ones; None when it is not one."""
    import re

    found = re.search(r"Minor \(\d+\): (.+?)(?:, Context:|$)", str(exc))
    if found is None:
        return None
    reason = found.group(1).strip()
    if "not found in Kerberos database" in reason:
        return reason + ": no account holds that SPN (a wrong or unregistered file server name, or a DNS alias " \
                        "without its own SPN)"
    if "No Kerberos credentials" in reason or "No credentials cache" in reason:
        return reason + ": there is no ticket to present; run kinit (or point KRB5CCNAME at the cache)"
    return reason


def _dc_address(config: DirectoryConfig) -> dict[str, str]:
    """``tls_name`` → the first DC, when the inventory names the DC by address and gives its name there."""
    if config.tls_name and config.dcs and _is_address(config.dcs[0]):
        return {config.tls_name: config.dcs[0]}
    return {}


def _is_address(server: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(server.strip("[]"))
    except ValueError:
        return False
    return True


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
    """What the file servers hold for the fleet: ``shares`` (each UNC content path's descriptor),
    ``share_permissions`` (each share's own descriptor, from the server's srvsvc) and ``shared_configs``
    (the applicationHost.config a shared-configuration farm's redirection.config points at, read whole,
    with the hosts that use it). Failures are recorded per path or share, never raised."""
    paths = unc_paths(hosts)
    farms: dict[str, list[str]] = {}
    for name, host in sorted(hosts.items()):
        folder = parse_unc(getattr(host, "shared_config", None) or "")
        if folder is not None:
            farms.setdefault(folder.unc.lower(), []).append(name)
    out: dict[str, list[dict[str, Any]]] = {"shares": [], "share_permissions": [], "shared_configs": []}
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
        asked: set[str] = set()
        for text in paths:
            unc = parse_unc(text)
            assert unc is not None
            share = UncPath(unc.server, unc.share, "")
            if share.unc.lower() in asked:
                continue
            asked.add(share.unc.lower())
            try:
                out["share_permissions"].append(reader.share_security(unc.server, unc.share).record())
            except DirectoryError as exc:
                out["share_permissions"].append({"share": share.unc, "server": unc.server,
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
