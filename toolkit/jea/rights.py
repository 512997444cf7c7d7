"""Which rights the collectors need on a web server, and what each missing right costs.

One table serves ``hosts check`` (what a session lacks and what that will cost), the environment errors
a run reports, docs/windows-setup.md and the lab. The facts behind it (default ACLs of the IIS folders,
who may read the Security log, UAC remote restrictions) are listed with their sources in docs/jea.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Right:
    id: str
    needs: str  # what the account must have, in an admin's words
    collectors: tuple[str, ...]  # collectors that fail or come back empty without it
    causes: tuple[str, ...]  # causes that cannot be diagnosed without it ("*": none can)
    fix: str


#: Causes whose evidence is the Security log (4625 records, the log's own state).
SECURITY_LOG_CAUSES = ("anonymous-credentials-invalid", "user-credentials-rejected", "logon-right-denied",
                       "account-locked-out", "account-disabled-or-expired", "security-log-full")

RIGHTS: dict[str, Right] = {
    "elevated": Right(
        id="elevated",
        needs="an elevated administrator token (member of Administrators, not filtered by UAC)",
        collectors=("Get-IisConfig", "Get-IisW3CLog", "Get-IisHttpErrLog", "Get-IisFailedRequestTrace",
                    "Get-LocalUserRight"),
        causes=("*",),
        fix="connect through the iisfleet JEA endpoint (`iisfleet jea export`, then `jea: true` in the "
            "inventory), or use a domain account that is a member of the server's Administrators group; a local "
            "account only gets a full token with LocalAccountTokenFilterPolicy=1 (see docs/windows-setup.md "
            "for its risk)"),
    "security-log": Right(
        id="security-log",
        needs="read access to the Security event log (Administrators or Event Log Readers)",
        collectors=("Get-AuthEventLog",),
        causes=SECURITY_LOG_CAUSES,
        fix="add the account to the server's Event Log Readers group, or use the iisfleet JEA endpoint"),
    "full-language": Right(
        id="full-language",
        needs="a FullLanguage PowerShell session (the collectors compile and call .NET code)",
        collectors=("*",),
        causes=("*",),
        fix="the host runs PowerShell in ConstrainedLanguage (AppLocker or WDAC application control): register "
            "the iisfleet JEA endpoint with its module allowed by the policy (signed by a trusted publisher or "
            "on the allow list) and set `jea: true`, or exempt the module's path in the policy"),
    "powershell-version": Right(
        id="powershell-version",
        needs="Windows PowerShell 4.0 or later (5.0+ for the JEA endpoint)",
        collectors=("*",),
        causes=("*",),
        fix="install Windows Management Framework 5.1 on the host (it brings Windows PowerShell 5.1 and JEA)"),
    "core": Right(
        id="core",
        needs="the iisfleet C# core compiled into the session",
        collectors=("*",),
        causes=("*",),
        fix="the core was not loaded in this session: `iisfleet hosts check` shows why Add-Type failed; through the "
            "JEA endpoint, export the module again with this iisfleet version and copy it to the server"),
    "no-language": Right(
        id="no-language",
        needs="an endpoint that runs scripts, or the iisfleet JEA endpoint",
        collectors=("*",),
        causes=("*",),
        fix="the configuration_name is a NoLanguage (JEA) endpoint that refuses scripts: connect to the iisfleet "
            "JEA endpoint with `jea: true` (its functions run the collectors), or to Microsoft.PowerShell"),
}


def cost(right_id: str) -> str:
    """One line: what is lost without ``right_id``."""
    right = RIGHTS[right_id]
    collectors = "every collector" if right.collectors == ("*",) else ", ".join(right.collectors)
    causes = "no cause can be diagnosed" if right.causes == ("*",) else \
        f"these causes cannot be diagnosed: {', '.join(right.causes)}"
    return f"without {right.needs}: {collectors} fail or come back empty; {causes}"
