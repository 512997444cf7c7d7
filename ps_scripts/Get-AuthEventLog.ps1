# collector-id: Get-AuthEventLog/2

<#
.SYNOPSIS
    Returns the authentication-related Windows events in a time window, as fields rather than text:
    Security 4625, 1102 and 1104, System Kerberos event 4, counts of 4624 logon types 3 and 8, the
    size and state of the Security and System logs, and the CrashOnAuditFail value.
.DESCRIPTION
    Read-only. A thin wrapper: the work is done by IisFleet.Target.AuthEventCollector in the C# core
    (compiled into this session by _core_loader.ps1). Events are read with EventLogReader and XPath
    filters; each event's EventData (or UserData) name/value pairs are returned, never the rendered
    message (no FormatDescription), and a read error keeps every event and count read before it. Reading the Security log
    needs administrator rights or membership of Event Log Readers; a refusal is reported in errors[]
    and the rest still arrives. CrashOnAuditFail is read from HKLM\SYSTEM\CurrentControlSet\Control\Lsa.
.PARAMETER Since
    Start of the window, ISO 8601 UTC. Empty: 24 hours before now.
.PARAMETER Until
    End of the window, ISO 8601 UTC. Empty: now.
.PARAMETER MaxEvents
    The most events returned per query (newest first).
.PARAMETER MaxLogonCount
    The most 4624 events counted per logon type; a count that reaches it is a lower bound.
.OUTPUTS
    System.String. One compact JSON envelope (schema iisfleet.collector/1).
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [string]$Since = '',
    [string]$Until = '',
    [int]$MaxEvents = 500,
    [int]$MaxLogonCount = 20000
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

function Test-CollectorEnvironment {
    # Why the C# core cannot run in this session, as an envelope error; $null when it can. Only what
    # ConstrainedLanguage allows runs before the mode is known, so that mode is reported, not tripped on.
    $mode = [string]$ExecutionContext.SessionState.LanguageMode
    $reason = ''
    $message = ''
    if ($PSVersionTable.PSVersion.Major -lt 4) {
        $reason = 'PowerShell-version'
        $message = 'Windows PowerShell ' + [string]$PSVersionTable.PSVersion + ' is too old: iisfleet needs 4.0 or later.'
    }
    elseif ($mode -eq 'ConstrainedLanguage') {
        $reason = 'ConstrainedLanguage'
        $message = 'PowerShell runs in ConstrainedLanguage mode on this host (application control policy): the collector cannot compile or call .NET code'
    }
    elseif ($mode -ne 'FullLanguage') {
        $reason = $mode
        $message = 'PowerShell runs in ' + $mode + ' mode on this host: the collector cannot compile or call .NET code'
    }
    elseif ($null -eq ('IisFleet.Target.Core' -as [type])) {
        $reason = 'core-not-loaded'
        $message = 'The iisfleet C# core is not loaded in this session (the transport''s loader did not run or failed), so this collector cannot run.'
    }
    if ($reason -eq '') {
        return $null
    }
    return @{ probe = 'environment'; target = $reason; category = 'environment'; message = $message }
}

$environmentError = Test-CollectorEnvironment
if ($null -ne $environmentError) {
    $refusal = @{
        schema    = 'iisfleet.collector/1'
        collector = 'Get-AuthEventLog'
        version   = 2
        host      = [string]$env:COMPUTERNAME
        time_utc  = (Get-Date).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")
        data      = @{}
        errors    = @($environmentError)
    }
    ConvertTo-Json -InputObject $refusal -Depth 4 -Compress
    return
}
[IisFleet.Target.WindowsCollectors]::AuthEvents($Since, $Until, $MaxEvents, $MaxLogonCount)
