# collector-id: Get-IisHttpErrLog/2

<#
.SYNOPSIS
    Returns the HTTP.sys error log (HTTPERR) lines in a time window.
.DESCRIPTION
    Read-only. A thin wrapper: the work happens in the iisfleet C# core (IisFleet.Target.LogCollectors),
    compiled once per session by the transport's loader. HTTPERR records what HTTP.sys refused or
    dropped before a request reached IIS, so it explains requests that never appear in the W3C logs.
    The folder comes from the registry value ErrorLoggingDir of
    HKLM\SYSTEM\CurrentControlSet\Services\HTTP\Parameters (plus \HTTPERR) when set. Kept lines: every
    directive line and every data line inside the window, each prefixed with its line number and a TAB;
    caps keep the newest. The output is several compact JSON envelopes, merged by the controller.
.PARAMETER LogDirectory
    The HTTPERR folder. Empty: the folder from the registry, else %SystemRoot%\System32\LogFiles\HTTPERR.
.PARAMETER Since
    Start of the window, ISO 8601 UTC. Empty: 24 hours before now.
.PARAMETER Until
    End of the window, ISO 8601 UTC. Empty: now.
.PARAMETER MaxLinesPerFile
    The most lines kept per file; the oldest kept lines are dropped first (truncated = true).
.PARAMETER MaxFiles
    The most files read, newest first.
.OUTPUTS
    System.String. Compact JSON envelopes (schema iisfleet.collector/1), each marked with its part.
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [string]$LogDirectory = '',
    [string]$Since = '',
    [string]$Until = '',
    [int]$MaxLinesPerFile = 50000,
    [int]$MaxFiles = 50
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
        collector = 'Get-IisHttpErrLog'
        version   = 2
        host      = [string]$env:COMPUTERNAME
        time_utc  = (Get-Date).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")
        data      = @{}
        errors    = @($environmentError)
    }
    ConvertTo-Json -InputObject $refusal -Depth 4 -Compress
    return
}
if ($LogDirectory -eq '') {
    # The registry is read here, not in the core: it only exists on Windows.
    $parameters = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Services\HTTP\Parameters' -ErrorAction SilentlyContinue
    if ($null -ne $parameters -and $null -ne $parameters.PSObject.Properties['ErrorLoggingDir'] -and [string]$parameters.ErrorLoggingDir -ne '') {
        $LogDirectory = ([string]$parameters.ErrorLoggingDir).TrimEnd('\') + '\HTTPERR'
    }
}
# One envelope per part, written as each is produced (see Get-IisW3CLog).
[IisFleet.Target.LogCollectors]::HttpErr($LogDirectory, $Since, $Until, $MaxLinesPerFile, $MaxFiles)
