"""Real Kerberos exchanges against the lab DC: does a client's ticket for ``HTTP/<site name>`` reach IIS and
decrypt there?

A Windows client asks the KDC for a service ticket for ``HTTP/<the name it browsed to>``; the KDC encrypts it
with the key of the one account holding that SPN (or refuses: nobody holds it, or several do). IIS then
decrypts it with the key of the account that decrypts for the site: the machine account when kernel-mode
authentication is on and useAppPoolCredentials off (or the pool runs as a built-in identity), else the
application pool's account (``toolkit.diagnose.rules.kerberos.decrypting_account``, the same rule).

Here the client is a domain user of the lab DC (python-gssapi over MIT Kerberos, the KDC being Samba's), and
the "site" is a GSS acceptor holding only the decrypting account's keys (from ``samba-tool domain
exportkeytab``), written under the name the client asked for (``keys_as``: HTTP.sys tries its account's keys
whatever name the ticket carries, MIT looks keys up by that name). The three outcomes are the real ones:

* ``accepted``: the ticket decrypted and the context was established;
* ``rejected``: the KDC issued a ticket, the acceptor could not decrypt it (the SPN is on another account);
  ``detail`` is MIT's own message (a decrypt integrity failure / no matching key: KRB_AP_ERR_MODIFIED on
  Windows);
* ``refused``: the KDC gave no ticket (``detail``: its reason, e.g. "Server not found in Kerberos database"
  for an SPN nobody holds, and for one two accounts hold: Samba refuses duplicates the way a Windows KDC
  answers KDC_ERR_S_PRINCIPAL_UNKNOWN and logs KDC event 11).

Not reproducible here: a KDC refusing with KDC_ERR_ETYPE_NOSUPP (Samba issues RC4 tickets for an RC4-only
account and derives AES keys at every password set), and Windows' own events (4769, Kerberos event 4); see
docs/directory.md.

The exchanges run in a child process (``python -m toolkit.lab.addc.tickets``) so the DC's krb5.conf never
leaks into the caller's environment.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from toolkit.errors import ConfigError


def domain_keytab(dc: Any, folder: Path) -> Path:
    """Every key of the lab domain now, in one keytab (one ``samba-tool domain exportkeytab`` call, about 1 s;
    exportkeytab adds to an existing file, so an older export is removed first)."""
    path = folder / "domain.keytab"
    path.unlink(missing_ok=True)
    done = subprocess.run(["samba-tool", "domain", "exportkeytab", "-s", str(dc.smb_conf), str(path)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not path.exists() or path.stat().st_size == 0:
        raise ConfigError(f"exportkeytab: no keys ({(done.stderr or done.stdout).strip()[-300:]})")
    return path


def _entries(data: bytes) -> list[tuple[str, bytes]]:
    """(principal without realm, the entry's bytes after the name type) of an MIT keytab (format 0x502)."""
    if data[:2] != b"\x05\x02":
        raise ConfigError(f"not an MIT keytab (version {data[:2].hex()})")
    out, offset = [], 2
    while offset + 4 <= len(data):
        (size,) = struct.unpack_from(">i", data, offset)
        offset += 4
        if size <= 0:  # a hole left by a removed entry
            offset += -size
            continue
        entry = data[offset:offset + size]
        offset += size
        (count,) = struct.unpack_from(">H", entry, 0)
        pos, parts = 2, []
        for _ in range(count + 1):  # the realm, then each component
            (length,) = struct.unpack_from(">H", entry, pos)
            parts.append(entry[pos + 2:pos + 2 + length].decode("utf-8", "replace"))
            pos += 2 + length
        out.append(("/".join(parts[1:]), entry[pos + 4:]))  # skip the name type
    return out


def keys_as(domain_keys: Path, account: str, principal: str, realm: str, target: Path) -> Path:
    """A keytab holding ``account``'s keys under the name ``principal``@``realm``.

    HTTP.sys with kernel-mode authentication decrypts a ticket with the machine account's keys whatever
    service name the ticket carries (and IIS in user mode with the pool account's); MIT's acceptor looks keys
    up by the ticket's name and key version. Giving the decrypting account's keys the name the client asked
    for, at every key version, makes MIT try exactly the keys Windows would try.
    """
    keys = [rest for name, rest in _entries(domain_keys.read_bytes()) if name.lower() == account.lower()]
    if not keys:
        raise ConfigError(f"the lab DC exported no keys for {account}")
    service, _, host = principal.partition("/")
    components = [service] + ([host] if host else [])

    def counted(text: str) -> bytes:
        raw = text.encode()
        return struct.pack(">H", len(raw)) + raw

    head = struct.pack(">H", len(components)) + counted(realm) + b"".join(counted(c) for c in components) \
        + struct.pack(">I", 1 if len(components) == 1 else 3)  # KRB5_NT_PRINCIPAL / KRB5_NT_SRV_HST
    out = [b"\x05\x02"]
    for rest in keys:
        timestamp, keyblock = rest[:4], rest[5:]  # after the 8-bit key version
        (length,) = struct.unpack_from(">H", keyblock, 2)
        keyblock = keyblock[:4 + length]  # drop the optional 32-bit key version: written below
        for version in range(1, 17):
            entry = head + timestamp + bytes([version]) + keyblock + struct.pack(">I", version)
            out.append(struct.pack(">i", len(entry)) + entry)
    target.write_bytes(b"".join(out))
    return target


def exchange(dc: Any, attempts: Iterable[Mapping[str, str]], *, client: str, password: str,
             workdir: Path) -> list[dict[str, str]]:
    """Run each attempt (``spn``, ``account`` = the decrypting sAMAccountName) as a real Kerberos exchange
    from ``client``; returns one ``{spn, account, result, detail}`` per attempt, in order."""
    workdir.mkdir(parents=True, exist_ok=True)
    everything = domain_keytab(dc, workdir)
    jobs = []
    for number, attempt in enumerate(attempts):
        job = {"spn": attempt["spn"], "account": attempt["account"]}
        try:
            job["keytab"] = str(keys_as(everything, attempt["account"], attempt["spn"], dc.spec.realm,
                                        workdir / f"site-{number}.keytab"))
        except ConfigError as error:
            job["keytab_error"] = str(error)
        jobs.append(job)
    request = {"realm": dc.spec.realm, "client": client, "password": password, "jobs": jobs}
    env = dict(os.environ, KRB5_CONFIG=str(dc.krb5_conf), KRB5CCNAME="MEMORY:iisfleet-lab-tickets")
    env.pop("KRB5_KTNAME", None)
    done = subprocess.run([sys.executable, "-m", "toolkit.lab.addc.tickets"], input=json.dumps(request),
                          capture_output=True, text=True, env=env, timeout=120)
    if done.returncode != 0:
        raise ConfigError(f"Kerberos exchanges against the lab DC failed: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout)


def _gss_text(error: Exception) -> str:
    """python-gssapi's message (major and minor status, MIT's own wording), on one line."""
    return " ".join(str(error).split())


def _run(request: Mapping[str, Any]) -> list[dict[str, str]]:  # in the child process
    import gssapi
    import gssapi.raw

    realm = request["realm"]
    user = gssapi.Name(f"{request['client']}@{realm}", gssapi.NameType.kerberos_principal)
    client = gssapi.raw.acquire_cred_with_password(user, request["password"].encode(), usage="initiate").creds
    krb5 = gssapi.MechType.kerberos
    out = []
    for job in request["jobs"]:
        row = {"spn": job["spn"], "account": job["account"]}
        target = gssapi.Name(f"{job['spn']}@{realm}", gssapi.NameType.kerberos_principal)
        try:
            initiator = gssapi.SecurityContext(name=target, creds=client, usage="initiate", mech=krb5)
            token = initiator.step()
        except gssapi.raw.misc.GSSError as error:
            out.append({**row, "result": "refused", "detail": _gss_text(error)})
            continue
        if "keytab" not in job:
            out.append({**row, "result": "rejected", "detail": job.get("keytab_error", "no keytab")})
            continue
        try:
            creds = gssapi.Credentials(usage="accept", store={"keytab": job["keytab"]})
            acceptor = gssapi.SecurityContext(creds=creds, usage="accept")
            acceptor.step(token)  # a failure returns the KRB-ERROR to send back and raises on next use
            established = acceptor.complete
            who = str(acceptor.initiator_name) if established else ""
        except gssapi.raw.misc.GSSError as error:
            out.append({**row, "result": "rejected", "detail": _gss_text(error)})
            continue
        out.append({**row, "result": "accepted" if established else "rejected",
                    "detail": f"context established for {who}" if established
                    else "the acceptor wanted another round"})
    return out


if __name__ == "__main__":  # the child process of exchange()
    print(json.dumps(_run(json.loads(sys.stdin.read()))))
