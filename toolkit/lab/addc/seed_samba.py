"""Seed the lab domain controller from a JSON spec on stdin. Runs under the SYSTEM python3 (Samba's
bindings), never imported by iisfleet itself. Prints one JSON line: what it made.

Spec (every key optional)::

    {"password": "default password",
     "policy": {"lockout_threshold": 3},
     "users": [{"sam": "svc_web", "sid": "S-1-5-21-...-1201 (optional)", "password": "...", "disabled": false, "expired": false,
                "must_change": false, "locked": false, "spns": ["HTTP/web.contoso.test"], "enctypes": 24}],
     "computers": [{"sam": "WEB01$", "dns": "web01.contoso.test", "spns": [...]}],
     "groups": [{"name": "WebAdmins", "members": ["alice", "OtherGroup"]}],
     "duplicate_spns": [{"spn": "HTTP/web01.contoso.test", "account": "svc_old"}],
     "keytabs": [{"principal": "HTTP/web01.contoso.test", "file": "web01.keytab"}],
     "folders": [{"path": "reports", "acl": "<smbcacls --set ACL string>", "files": {"a.txt": "text"},
                  "share": "content"}],
     "share_permissions": [{"share": "archive", "acl": ["Everyone:ALLOWED/0/READ", "CONTOSO\\x:DENIED/0/FULL"]}]}

A folder's ``share`` defaults to ``content``. Share permissions are written with ``sharesec --replace`` after
the folders (a share-level deny must not stop the seed's own uploads); names become SIDs here, so sharesec
needs no name lookup.

Facts it relies on: computer accounts made by newcomputer() are disabled and have no password (so no
keys: the KDC refuses them and exportkeytab writes nothing), so a random password is set and the account
enabled; msDS-SupportedEncryptionTypes=24 gives AES tickets and keytabs; Samba refuses duplicate SPNs
(samldb, even with the relax control), so a test duplicate is written into the partition file below
the module stack (its index is updated, so LDAP and the KDC see both holders); lockout is made the
real way, with bad passwords against the KDC.
"""

import json
import os
import secrets
import subprocess
import sys

import ldb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB

D = os.environ["IISFLEET_DC_DIR"]
CONF = os.environ["IISFLEET_DC_CONF"]
IP = os.environ["IISFLEET_DC_IP"]
REALM = os.environ["IISFLEET_DC_REALM"]
NETBIOS = os.environ["IISFLEET_DC_NETBIOS"]
ADMINPASS = os.environ["IISFLEET_DC_ADMINPASS"]
BASEDN = ",".join("DC=" + p for p in REALM.lower().split("."))


def samdb():
    lp = LoadParm()
    lp.load(CONF)
    return SamDB(url=f"{D}/private/sam.ldb", session_info=system_session(), lp=lp)


def dn_of(db, sam):
    res = db.search(BASEDN, expression=f"(sAMAccountName={ldb.binary_encode(sam)})", attrs=["dn"])
    if not res:
        raise SystemExit(f"no account {sam}")
    return str(res[0].dn)


def replace(db, dn, **attrs):
    m = ldb.Message()
    m.dn = ldb.Dn(db, dn)
    for k, v in attrs.items():
        m[k] = ldb.MessageElement(str(v), ldb.FLAG_MOD_REPLACE, k)
    db.modify(m)


def add_spns(db, dn, spns):
    if spns:
        m = ldb.Message()
        m.dn = ldb.Dn(db, dn)
        m["servicePrincipalName"] = ldb.MessageElement(list(spns), ldb.FLAG_MOD_ADD, "servicePrincipalName")
        db.modify(m)


def add_with_sid(db, dn, object_class, sam, sid, **attrs):
    """Add an account or group with the SID the fleet gave it (the DC was provisioned with the fleet's domain
    SID): objectSid is the system's to set, so this needs the relax control."""
    from samba.dcerpc import security
    from samba.ndr import ndr_pack

    db.add(dict({"dn": dn, "objectClass": object_class, "sAMAccountName": sam,
                 "objectSid": ndr_pack(security.dom_sid(sid))}, **attrs), controls=["relax:0"])


def main():
    spec = json.loads(sys.stdin.read() or "{}")
    default_pw = spec.get("password", "Lab!Passw0rd-1")
    db = samdb()
    made = {"users": [], "computers": [], "groups": [], "keytabs": {}, "duplicates": [], "locked": []}
    policy = spec.get("policy") or {}
    # Passwords never expire by age in the lab (no clock-dependent flakiness); lockout as asked.
    replace(db, BASEDN, lockoutThreshold=int(policy.get("lockout_threshold", 3)),
            lockoutDuration=-18000000000, lockOutObservationWindow=-18000000000, maxPwdAge=-0x8000000000000000)
    # One transaction for the accounts and groups: ldb commits (and syncs) every modify otherwise.
    db.transaction_start()
    for u in spec.get("users") or []:
        sam = u["sam"]
        if u.get("sid"):
            add_with_sid(db, f"CN={sam},CN=Users,{BASEDN}", "user", sam, u["sid"],
                         userPrincipalName=f"{sam}@{REALM.lower()}")
            db.setpassword(f"(sAMAccountName={sam})", u.get("password", default_pw))
            db.enable_account(f"(sAMAccountName={sam})")
        else:
            db.newuser(sam, u.get("password", default_pw))
        dn = dn_of(db, sam)
        if u.get("enctypes", 24):
            replace(db, dn, **{"msDS-SupportedEncryptionTypes": int(u.get("enctypes", 24))})
        add_spns(db, dn, u.get("spns") or [])
        if u.get("disabled"):
            db.disable_account(f"(sAMAccountName={sam})")
        if u.get("expired"):
            db.setexpiry(f"(sAMAccountName={sam})", -86400)
        if u.get("must_change"):
            replace(db, dn, pwdLastSet=0)
        made["users"].append(sam)
    for c in spec.get("computers") or []:
        sam = c["sam"].rstrip("$")
        if c.get("sid"):  # like newcomputer(): a disabled workstation trust account, enabled below
            add_with_sid(db, f"CN={sam.upper()},CN=Computers,{BASEDN}", "computer", sam + "$", c["sid"],
                         userAccountControl=str(0x1000 | 0x2))
        else:
            db.newcomputer(sam)
        dn = dn_of(db, sam + "$")
        db.setpassword(f"(sAMAccountName={sam}$)", "Mach1ne!" + secrets.token_hex(12))
        db.enable_account(f"(sAMAccountName={sam}$)")
        replace(db, dn, dNSHostName=c.get("dns", f"{sam.lower()}.{REALM.lower()}"),
                **{"msDS-SupportedEncryptionTypes": int(c.get("enctypes", 24))})
        add_spns(db, dn, c.get("spns") or [])
        made["computers"].append(sam + "$")
    for g in spec.get("groups") or []:
        if g.get("sid"):  # a global security group, as newgroup() makes
            add_with_sid(db, f"CN={g['name']},CN=Users,{BASEDN}", "group", g["name"], g["sid"],
                         groupType=str(-2147483646))
        else:
            db.newgroup(g["name"])
        made["groups"].append(g["name"])
    for g in spec.get("groups") or []:
        if g.get("members"):
            db.add_remove_group_members(g["name"], list(g["members"]))
    db.transaction_commit()
    env = dict(os.environ)
    net = None
    for k in spec.get("keytabs") or []:
        path = os.path.join(D, k["file"])
        if net is None:  # what `samba-tool domain exportkeytab` does, without an interpreter start per principal
            from samba import enable_net_export_keytab
            from samba.net import Net

            enable_net_export_keytab()
            lp = LoadParm()
            lp.load(CONF)
            net = Net(None, lp)
        before = os.path.getsize(path) if os.path.exists(path) else 0
        net.export_keytab(keytab=path, principal=k["principal"])
        if not os.path.exists(path) or os.path.getsize(path) == before:
            raise SystemExit(f"exportkeytab wrote nothing for {k['principal']} (no keys, or a duplicated SPN)")
        # several principals may share one file: exportkeytab adds to an existing keytab
        made["keytabs"][k["principal"]] = path
    for dup in spec.get("duplicate_spns") or []:
        raw = ldb.Ldb(f"tdb://{D}/private/sam.ldb.d/{BASEDN.upper()}.ldb")  # keep one reference (Dn on a GC'd Ldb crashes)
        m = ldb.Message()
        m.dn = ldb.Dn(raw, dn_of(db, dup["account"]))
        m["servicePrincipalName"] = ldb.MessageElement(dup["spn"], ldb.FLAG_MOD_ADD, "servicePrincipalName")
        raw.modify(m)
        made["duplicates"].append(dup)
    threshold = int(policy.get("lockout_threshold", 3))
    for u in spec.get("users") or []:
        if u.get("locked"):
            for _ in range(threshold):
                subprocess.run(["kinit", f"{u['sam']}@{REALM}"], input=b"not-the-password\n", env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            made["locked"].append(u["sam"])
    admin = ["-U", f"{NETBIOS}\\Administrator%{ADMINPASS}", "--use-kerberos=disabled"]
    for folder in spec.get("folders") or []:
        share = folder.get("share", "content")
        os.makedirs(os.path.join(D, "shares", share, folder["path"]), exist_ok=True)
        if folder.get("acl"):
            # Set over SMB like an administrator would, so acl_xattr stores a real NT ACL.
            subprocess.run(["smbcacls", "-s", CONF, f"//{IP}/{share}", folder["path"], *admin, "--set",
                            folder["acl"]], check=True, env=env, stdout=subprocess.DEVNULL)
        for name, text in (folder.get("files") or {}).items():
            # Files written over SMB inherit the folder's ACL.
            local = os.path.join(D, "run", "seed-upload.tmp")
            with open(local, "w") as handle:
                handle.write(text)
            subprocess.run(["smbclient", "-s", CONF, f"//{IP}/{share}", *admin, "-c",
                            f"put {local} {folder['path']}/{name}"], check=True, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for entry in spec.get("share_permissions") or []:
        aces = [_sid_ace(db, ace) for ace in entry["acl"]]
        subprocess.run(["sharesec", "-s", CONF, entry["share"], "--replace", ",".join(aces)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        made.setdefault("share_permissions", {})[entry["share"]] = aces
    print(json.dumps(made))


WELL_KNOWN = {"everyone": "S-1-1-0", "builtin\\administrators": "S-1-5-32-544",
              "authenticated users": "S-1-5-11", "nt authority\\authenticated users": "S-1-5-11"}


def _sid_ace(db, ace):
    """``NAME:ALLOWED/0/READ`` with NAME a domain account or group (``DOMAIN\\sam`` or ``sam``), a well-known
    name or a SID → the same ACE with the SID."""
    who, _, rest = ace.rpartition(":")
    if who.upper().startswith("S-1-"):
        return ace
    if who.lower() in WELL_KNOWN:
        return f"{WELL_KNOWN[who.lower()]}:{rest}"
    sam = who.split("\\", 1)[-1]
    res = db.search(BASEDN, expression=f"(sAMAccountName={ldb.binary_encode(sam)})", attrs=["objectSid"])
    if not res:
        raise SystemExit(f"share permission for unknown account {who}")
    return f"{db.schema_format_value('objectSid', res[0]['objectSid'][0]).decode()}:{rest}"


if __name__ == "__main__":
    main()
