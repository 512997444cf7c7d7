"""Which rights the collectors need on a web server, and what each missing right costs.

One table serves ``hosts check`` (what a session lacks and what that will cost), the environment errors
a run reports, docs/windows-setup.md and the lab. The facts behind it (default ACLs of the IIS folders,
who may read the Security log, UAC remote restrictions) are listed with their sources in docs/jea.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Right:
    id: str
    needs: str  # what the account must have, in an admin's words
    collectors: tuple[str, ...]  # collectors that fail or come back empty without it
    causes: tuple[str, ...]  # causes that cannot be diagnosed without it ("*": none can)
    fix: str
    #: the host finding a run and `hosts check` report when a session lacks it (docs/diagnosis.md)
    finding: str = ""
    severity: str = "high"
    #: a command that shows the state on the host (iisfleet never runs it)
    check: str = ""


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
            "for its risk)",
        finding="host-session-not-elevated", severity="high",
        check="whoami /groups | findstr /i \"S-1-16-12288 S-1-5-32-544\""),
    "security-log": Right(
        id="security-log",
        needs="read access to the Security event log (Administrators or Event Log Readers)",
        collectors=("Get-AuthEventLog",),
        causes=SECURITY_LOG_CAUSES,
        fix="add the account to the server's Event Log Readers group, or use the iisfleet JEA endpoint",
        finding="host-security-log-unreadable", severity="medium", check="net localgroup \"Event Log Readers\""),
    "full-language": Right(
        id="full-language",
        needs="a FullLanguage PowerShell session (the collectors compile and call .NET code)",
        collectors=("*",),
        causes=("*",),
        fix="the host runs PowerShell in ConstrainedLanguage (AppLocker or WDAC application control): register "
            "the iisfleet JEA endpoint with its module allowed by the policy (signed by a trusted publisher or "
            "on the allow list) and set `jea: true`, or exempt the module's path in the policy",
        finding="host-constrained-language", severity="critical", check="$ExecutionContext.SessionState.LanguageMode"),
    "powershell-version": Right(
        id="powershell-version",
        needs="Windows PowerShell 4.0 or later (5.0+ for the JEA endpoint)",
        collectors=("*",),
        causes=("*",),
        fix="install Windows Management Framework 5.1 on the host (it brings Windows PowerShell 5.1 and JEA)",
        finding="host-powershell-too-old", severity="critical", check="$PSVersionTable.PSVersion"),
    "core": Right(
        id="core",
        needs="the iisfleet C# core compiled into the session",
        collectors=("*",),
        causes=("*",),
        fix="the core was not loaded in this session: `iisfleet hosts check` shows why Add-Type failed; through the "
            "JEA endpoint, export the module again with this iisfleet version and copy it to the server",
        finding="host-core-not-loaded", severity="critical", check="iisfleet hosts check <host>"),
    "no-language": Right(
        id="no-language",
        needs="an endpoint that runs scripts, or the iisfleet JEA endpoint",
        collectors=("*",),
        causes=("*",),
        fix="the configuration_name is a NoLanguage (JEA) endpoint that refuses scripts: connect to the iisfleet "
            "JEA endpoint with `jea: true` (its functions run the collectors), or to Microsoft.PowerShell",
        finding="host-no-language-endpoint", severity="critical",
        check="Get-PSSessionConfiguration | Select-Object Name, LanguageMode, SessionType"),
    "powershell-jea": Right(
        id="powershell-jea",
        needs="PowerShell 5.0 or later for the iisfleet JEA endpoint (JEA session configurations need WMF 5)",
        collectors=(),
        causes=(),
        fix="install Windows Management Framework 5.1 to use the JEA endpoint; until then the collectors need an "
            "elevated administrator session (Microsoft.PowerShell)",
        finding="host-powershell-no-jea", severity="low", check="$PSVersionTable.PSVersion"),
}

#: the oldest PowerShell the target side supports, and the first that can host a JEA endpoint
MIN_POWERSHELL = (4, 0)
JEA_POWERSHELL = (5, 0)
#: ``target`` of a target-side ``environment`` error (docs/contracts.md) → the right it lacks
ENVIRONMENT_TARGETS = {"ConstrainedLanguage": "full-language", "NoLanguage": "no-language",
                       "not-elevated": "elevated", "no-security-log": "security-log",
                       "PowerShell-version": "powershell-version", "core-not-loaded": "core"}


def powershell_version(text: object) -> tuple[int, int] | None:
    match = re.match(r"\s*(\d+)\.(\d+)", str(text or ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def rights_lacking(*, ps_version: object = None, language_mode: object = None, elevated: object = None,
                   inetsrv_readable: object = None, security_log_readable: object = None,
                   jea_endpoint: bool = False) -> list[str]:
    """The rights a session lacks, from what a probe or a run saw (None: not known, nothing is claimed).
    `hosts check` and the diagnosis both decide here, so they report the same host the same way."""
    lacking = []
    version = powershell_version(ps_version)
    if version is not None and version < MIN_POWERSHELL:
        lacking.append("powershell-version")
    elif version is not None and version < JEA_POWERSHELL and not jea_endpoint:
        lacking.append("powershell-jea")
    mode = str(language_mode or "")
    if mode and mode not in ("FullLanguage", "NoLanguage"):  # Constrained-, RestrictedLanguage, or unreadable
        lacking.append("full-language")
    elif mode == "NoLanguage" and not jea_endpoint:
        lacking.append("no-language")
    if not jea_endpoint and (elevated is False or inetsrv_readable is False):
        lacking.append("elevated")
    if not jea_endpoint and security_log_readable is False:
        lacking.append("security-log")
    return lacking


def right_in_error(text: str) -> str | None:
    """The right an ``environment`` error's text names (its target, as the target side and the transports
    write it), or None."""
    for target, right in ENVIRONMENT_TARGETS.items():
        if target.lower() in (text or "").lower():
            return right
    return None


def cost(right_id: str) -> str:
    """One line: what is lost without ``right_id``."""
    right = RIGHTS[right_id]
    if not right.collectors and not right.causes:
        return f"without {right.needs}: no collector or cause is lost, but {right.fix}"
    collectors = "every collector" if right.collectors == ("*",) else ", ".join(right.collectors)
    causes = "no cause can be diagnosed" if right.causes == ("*",) else \
        f"these causes cannot be diagnosed: {', '.join(right.causes)}"
    return f"without {right.needs}: {collectors} fail or come back empty; {causes}"
