"""A real Active Directory domain controller for the lab and the tests: Samba AD DC on loopback.

``SambaDC(workdir).start()`` provisions (or copies a cached, never-started provision), writes a private
smb.conf/krb5.conf and a TLS certificate, starts ``samba -F`` as our own child in a new session and
waits until Kerberos, LDAP, LDAPS and SMB answer. ``seed(spec)`` creates accounts, groups, SPNs,
account states, keytabs and NT ACLs on a share (``toolkit/lab/addc/seed_samba.py``, run with the
system Python that carries Samba's bindings). ``stop()`` ends the daemon and every process it forked
(smbd and winbindd call setsid, so the process group is not enough) and removes the directory.

Facts this relies on (measured on Debian 12 / Samba 4.17, see docs/directory.md):

* Needs root: ports 88/389/445/464/636 and the fixed winbindd socket directory ``/run/samba/winbindd``
  (smbd's libwbclient uses the compiled-in path). So there is one DC per machine: callers serialise with
  :func:`exclusive_lock`.
* ``interfaces = 127.0.0.53/8`` (address/mask) binds an address ``lo`` does not carry.
* ``ldap server require strong auth = no`` lets simple binds on 389 and GSSAPI binds without sealing
  through (Samba's default refuses both); provision drops that option, so it is written afterwards.
* The DC's own SPNs come from the dnsupdate service, which is off (it would query resolv.conf's DNS
  server): ``samba_spnupdate`` runs once, offline.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import ConfigError

DEFAULT_IP = "127.0.0.53"
DEFAULT_LOCK = Path("/run/lock/iisfleet-samba-dc.lock")
PORTS = (88, 389, 636, 445)
#: the lab file shares (acl_xattr): ``content`` keeps the default share permissions, ``archive`` is where a
#: seed sets restrictive ones (a share-level deny would otherwise get in the way of the other tests)
SHARES = ("content", "archive")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-samba bindings live there, not in a venv


def available() -> str | None:
    """None when a DC can run here, else why not (one line)."""
    if os.geteuid() != 0:
        return "a Samba AD DC needs root (ports 88/389/445/636 and /run/samba/winbindd)"
    for tool in ("samba", "samba-tool", "samba_spnupdate", "openssl", "smbcacls", "sharesec", "kinit"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: samba samba-ad-dc samba-ad-provision winbind krb5-user " \
                   f"smbclient)"
    if subprocess.run([SYSTEM_PYTHON, "-c", "import samba.samdb"], capture_output=True).returncode != 0:
        return f"{SYSTEM_PYTHON} cannot import samba (package python3-samba)"
    return None


@contextlib.contextmanager
def exclusive_lock(path: Path = DEFAULT_LOCK) -> Iterator[None]:
    """Hold an exclusive flock for the DC's lifetime: its ports and winbindd socket are machine-wide, so
    two test sessions (or a test session and ``lab serve``) wait for each other instead of colliding."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class DomainSpec:
    realm: str = "CONTOSO.TEST"
    netbios: str = "CONTOSO"
    admin_password: str = "Adm1n!Passw0rd"  # lab-only, like the lab's other fixed demo credentials
    ip: str = DEFAULT_IP
    dc_name: str = "dc1"
    domain_sid: str = ""  # S-1-5-21-x-y-z: provision with this domain SID (empty: Samba picks one)

    @property
    def dns_domain(self) -> str:
        return self.realm.lower()

    @property
    def base_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.dns_domain.split("."))

    @property
    def dc_fqdn(self) -> str:
        return f"{self.dc_name}.{self.dns_domain}"


def _samba_version() -> str:
    out = subprocess.run(["samba", "--version"], capture_output=True, text=True).stdout.strip()
    return out.replace("Version ", "").replace(" ", "_") or "unknown"


def _port_open(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((ip, port)) == 0


class SambaDC:
    """One lab domain controller living in ``workdir`` (created; must not exist yet)."""

    def __init__(self, workdir: Path, spec: DomainSpec = DomainSpec(), *, template_root: Path | None = None,
                 max_runtime_s: int = 3600) -> None:
        if not spec.ip.startswith("127."):
            raise ConfigError(f"the lab DC binds loopback addresses only, not {spec.ip}")
        deepest = Path(workdir) / "run" / "ncalrpc" / "np" / "protected_storage"
        if len(str(deepest)) > 100:
            raise ConfigError(f"{workdir}: too long for samba's Unix sockets (their paths have ~107 bytes at "
                              f"most); use a shorter directory")
        self.dir = Path(workdir)
        self.spec = spec
        self.template_root = template_root
        self.max_runtime_s = max_runtime_s
        self.process: subprocess.Popen[bytes] | None = None
        self.timings: dict[str, float] = {}
        self.seeded: dict = {}  # what the last seed() made

    # --- paths ---------------------------------------------------------------------------------
    @property
    def smb_conf(self) -> Path:
        return self.dir / "etc" / "smb.conf"

    @property
    def krb5_conf(self) -> Path:
        return self.dir / "krb5.conf"

    @property
    def ca_file(self) -> Path:
        return self.dir / "private" / "tls" / "ca.pem"

    @property
    def share_dir(self) -> Path:
        return self.dir / "shares" / "content"

    def env(self) -> dict[str, str]:
        """Variables a client needs: a private krb5.conf (never /etc/krb5.conf) and ticket cache."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5CCNAME": f"FILE:{self.dir / 'krb5cc_admin'}"}

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout_s: float = 60.0) -> SambaDC:
        if self.dir.exists():
            raise ConfigError(f"{self.dir} exists; the lab DC needs a fresh directory")
        for port in PORTS:
            if _port_open(self.spec.ip, port):
                raise ConfigError(f"{self.spec.ip}:{port} is already in use (another lab DC?)")
        t0 = time.monotonic()
        template = self._template()
        if template is not None and (template / ".complete").is_file():
            shutil.copytree(template, self.dir, symlinks=True)  # copy2 keeps the sysvol NT-ACL xattrs
            (self.dir / ".complete").unlink()
            origin = (self.dir / ".origin").read_text().strip()
            (self.dir / ".origin").unlink()
            for path in (self.smb_conf, self.krb5_conf):
                path.write_text(path.read_text().replace(origin, str(self.dir)))
        else:
            self._provision()
            if template is not None:
                self._save_template(template)
        self._ensure_shares()
        self.timings["provision_s"] = time.monotonic() - t0
        t1 = time.monotonic()
        env = dict(os.environ, KRB5_CONFIG=str(self.krb5_conf))
        log = open(self.dir / "log" / "samba.out", "wb")
        self.process = subprocess.Popen(
            ["samba", "-F", "-s", str(self.smb_conf), "--debug-stdout", "-d", "1",
             f"--maximum-runtime={self.max_runtime_s}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        (self.dir / "run" / "samba.fg.pid").write_text(str(self.process.pid))
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop(keep=True)
            raise
        self.timings["start_s"] = time.monotonic() - t1
        return self

    def _template(self) -> Path | None:
        if self.template_root is None:
            return None
        key = f"{self.spec.realm}-{self.spec.netbios}-{self.spec.ip}-{_samba_version()}"
        if self.spec.domain_sid:
            key += f"-{self.spec.domain_sid}"
        return Path(self.template_root) / key

    def _save_template(self, template: Path) -> None:
        tmp = template.with_name(template.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(self.dir, tmp, symlinks=True)
        (tmp / ".origin").write_text(str(self.dir))
        (tmp / ".complete").touch()
        shutil.rmtree(template, ignore_errors=True)
        tmp.rename(template)

    def _run(self, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
        if done.returncode != 0:
            raise ConfigError(f"{argv[0]} failed ({done.returncode}): {(done.stderr or done.stdout)[-600:]}")
        return done

    def _provision(self) -> None:
        spec, d = self.spec, self.dir
        for sub in ("etc", "log", "run", "shares/content"):
            (d / sub).mkdir(parents=True)
        (d / "empty.conf").write_text("")  # keeps provision from importing /etc/samba/smb.conf
        options = {
            "interfaces": f"{spec.ip}/8", "bind interfaces only": "yes", "disable netbios": "yes",
            "server services": "s3fs rpc ldap kdc winbindd", "prefork children": "1",
            "pid directory": f"{d}/run", "ncalrpc dir": f"{d}/run/ncalrpc",
            "ntp signd socket directory": f"{d}/run/ntp_signd", "log file": f"{d}/log/log.%m",
        }
        argv = ["samba-tool", "domain", "provision", "-s", str(d / "empty.conf"), f"--targetdir={d}",
                f"--realm={spec.realm}", f"--domain={spec.netbios}", "--server-role=dc", "--dns-backend=NONE",
                f"--host-name={spec.dc_name}", f"--host-ip={spec.ip}", f"--adminpass={spec.admin_password}"]
        if spec.domain_sid:
            argv.append(f"--domain-sid={spec.domain_sid}")
        argv += [f"--option={k}={v}" for k, v in options.items()]
        self._run(argv)
        text = self.smb_conf.read_text()
        glob = text.split("[sysvol]", 1)[0].rstrip() + "\n"
        extra = {"load printers": "no", "printcap name": "/dev/null", "disable spoolss": "yes",
                 "multicast dns register": "no", "ldap server require strong auth": "no", "smb ports": "445"}
        glob += "".join(f"\t{k} = {v}\n" for k, v in extra.items())
        shares = {"sysvol": f"{d}/state/sysvol", "netlogon": f"{d}/state/sysvol/{spec.dns_domain}/scripts"}
        body = "".join(f"\n[{name}]\n\tpath = {path}\n\tread only = no\n" for name, path in shares.items())
        body += f"\n[content]\n\tpath = {d}/shares/content\n\tread only = no\n\tvfs objects = dfs_samba4 acl_xattr\n"
        self.smb_conf.write_text(glob + body)
        self.krb5_conf.write_text(
            "[libdefaults]\n"
            f"\tdefault_realm = {spec.realm}\n\tdns_lookup_realm = false\n\tdns_lookup_kdc = false\n"
            "\tdns_canonicalize_hostname = false\n\trdns = false\n\tudp_preference_limit = 1\n"
            f"[realms]\n\t{spec.realm} = {{\n\t\tkdc = {spec.ip}\n\t\tadmin_server = {spec.ip}\n"
            f"\t\tkpasswd_server = {spec.ip}\n\t}}\n"
            f"[domain_realm]\n\t.{spec.dns_domain} = {spec.realm}\n\t{spec.dns_domain} = {spec.realm}\n")
        tls = d / "private" / "tls"
        tls.mkdir(parents=True, exist_ok=True)
        # Our own certificate: Samba's self-made one has a random serial that is negative about half the
        # time (cryptography refuses those) and a 4096-bit key that costs seconds at first start.
        serial = "0x1" + os.urandom(7).hex()
        self._run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                   "-set_serial", serial, "-subj", f"/CN={spec.dc_fqdn}",
                   "-addext", f"subjectAltName=DNS:{spec.dc_fqdn},IP:{spec.ip}",
                   "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem")])
        os.chmod(tls / "key.pem", 0o600)
        shutil.copy(tls / "cert.pem", tls / "ca.pem")
        self._run(["samba_spnupdate", "-s", str(self.smb_conf)])

    def _ensure_shares(self) -> None:
        """Every share of :data:`SHARES` in smb.conf (older cached templates have only ``content``), each with
        NT ACLs in xattrs; the shares' own permissions (share_info.tdb) are the seed's to set."""
        text = self.smb_conf.read_text()
        for name in SHARES:
            path = self.dir / "shares" / name
            path.mkdir(parents=True, exist_ok=True)
            if f"[{name}]" not in text:
                text += f"\n[{name}]\n\tpath = {path}\n\tread only = no\n\tvfs objects = dfs_samba4 acl_xattr\n"
        self.smb_conf.write_text(text)

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.process.poll() is not None:
                tail = (self.dir / "log" / "samba.out").read_text(errors="replace")[-1500:]
                raise ConfigError(f"samba exited with {self.process.returncode}: {tail}")
            if all(_port_open(self.spec.ip, p) for p in PORTS):
                probe = subprocess.run(["ldbsearch", "-H", f"ldap://{self.spec.ip}", "-s", "base", "-b", "",
                                        "dnsHostName"], capture_output=True)
                if probe.returncode == 0:
                    return
            time.sleep(0.05)
        raise ConfigError(f"samba did not answer on {self.spec.ip} within {timeout_s:.0f} s")

    def seed(self, spec: dict) -> dict:
        """Create what ``spec`` describes (see seed_samba.py); returns its report (keytab paths...)."""
        import json

        env = dict(os.environ, **self.env(), IISFLEET_DC_DIR=str(self.dir), IISFLEET_DC_CONF=str(self.smb_conf),
                   IISFLEET_DC_IP=self.spec.ip, IISFLEET_DC_REALM=self.spec.realm,
                   IISFLEET_DC_NETBIOS=self.spec.netbios, IISFLEET_DC_ADMINPASS=self.spec.admin_password)
        script = Path(__file__).with_name("seed_samba.py")
        done = subprocess.run([SYSTEM_PYTHON, str(script)], input=json.dumps(spec), capture_output=True, text=True,
                              env=env, timeout=300)
        if done.returncode != 0:
            raise ConfigError(f"seeding the lab DC failed: {done.stderr[-1500:]}")
        self.seeded = json.loads(done.stdout.strip().splitlines()[-1])
        return self.seeded

    def stop(self, *, keep: bool = False) -> None:
        """End samba and all its descendants, then remove the directory (unless ``keep``)."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            # samba-dcerpcd (started on demand by smbd when a client opens a named pipe such as srvsvc) detaches
            # to init, so it is found by the configuration file it was given, which is this DC's own.
            helpers = _started_with(f"--configfile={self.smb_conf}")
            tree = [proc.pid] + _descendants(proc.pid) + [p for h in helpers for p in [h] + _descendants(h)]
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            end = time.monotonic() + 10
            while time.monotonic() < end and any(_alive(p) for p in tree):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.05)
            for pid in tree:
                if _alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.process = None
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def _started_with(argument: str) -> list[int]:
    """Processes with ``argument`` on their command line."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if argument.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


__all__ = ["DEFAULT_IP", "DomainSpec", "SambaDC", "available", "exclusive_lock"]
if __name__ == "__main__":  # pragma: no cover - manual use: python -m toolkit.lab.addc DIR
    dc = SambaDC(Path(sys.argv[1])).start()
    print(dc.timings)


def seed_from_fleet(model: object) -> dict:
    """The seed spec (seed_samba.py) for a lab fleet's ``domain:`` section and hosts.

    Accounts keep their states (disabled, locked, expired) and SPNs; every domain-joined host gets its
    computer account with ``HTTP/<fqdn>``, ``HTTP/<name>`` and ``HOST/`` SPNs unless the section already
    names it, and a keytab entry for ``HTTP/<fqdn>`` so the lab's WinRM listeners accept Kerberos. A
    duplicated SPN in the section (the seed-catalog's duplicate-SPN cause) is written the way only a test
    domain allows: the first holder gets it normally, the others below Samba's uniqueness check.
    """
    domain = model.domain  # type: ignore[attr-defined]
    domain_sid = getattr(domain, "sid", "")

    def own_sid(sid: str) -> bool:  # a SID the DC can give: one of its own domain (provisioned with domain_sid)
        return bool(domain_sid and sid.startswith(domain_sid + "-"))

    users, computers, duplicates = [], [], []
    held: dict[str, str] = {}
    for account in domain.accounts.values():
        spns = []
        for spn in account.spns:
            if spn.lower() in held:
                duplicates.append({"spn": spn, "account": account.sam})
            else:
                held[spn.lower()] = account.sam
                spns.append(spn)
        entry = {"sam": account.sam, "spns": spns}
        if own_sid(account.sid):
            entry["sid"] = account.sid
        if account.kind == "computer":
            computers.append(entry)
        else:
            entry.update(disabled=not account.enabled, locked=account.locked, expired=account.expired)
            users.append(entry)
    # The fleet's own (demo) credential, when it is an account of this domain: so an admin can kinit it and
    # run the fleet with Kerberos (`kerberos: true`) against the lab's listeners.
    operator = str(getattr(model, "username", "") or "")
    prefix, _, sam = operator.rpartition("\\")
    if prefix.upper() in (domain.netbios.upper(), domain.name.upper()) and sam and \
            sam.lower() not in {u["sam"].lower() for u in users}:
        users.append({"sam": sam, "spns": [], "password": str(getattr(model, "password", ""))})
    keytabs = []
    known = {c["sam"].lower() for c in computers}
    for host in model.hosts:  # type: ignore[attr-defined]
        if not getattr(host, "domain_joined", True):
            continue
        sam = host.computer_name.upper() + "$"
        wanted = [f"HTTP/{host.fqdn}", f"HTTP/{host.computer_name}", f"HOST/{host.fqdn}"]
        if sam.lower() not in known:
            computers.append({"sam": sam, "dns": host.fqdn, "spns": []})
            known.add(sam.lower())
        entry = next(c for c in computers if c["sam"].lower() == sam.lower())
        entry.setdefault("dns", host.fqdn)
        for spn in wanted:  # what WinRM and IIS clients ask for, unless another account already holds it
            if spn.lower() not in held:
                held[spn.lower()] = sam
                entry["spns"].append(spn)
        if held.get(f"http/{host.fqdn}".lower()) and not any(d["spn"].lower() == f"http/{host.fqdn}".lower()
                                                            for d in duplicates):
            keytabs.append({"principal": f"HTTP/{host.fqdn}", "file": "lab-hosts.keytab"})
    groups = [{"name": g.name, "members": list(g.members), **({"sid": g.sid} if own_sid(g.sid) else {})}
              for g in getattr(domain, "groups", ())]
    return {"users": users, "computers": computers, "groups": groups, "duplicate_spns": duplicates,
            "keytabs": keytabs}
