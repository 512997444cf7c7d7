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

# Environment probe: only constructs that work in every language mode run before it.
$problem = $null
$probe = 'environment'
if ([string]$ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage') {
    $problem = 'PowerShell runs in ' + [string]$ExecutionContext.SessionState.LanguageMode + ' mode on this host; the collector needs FullLanguage to call its C# core.'
}
elseif ($PSVersionTable.PSVersion.Major -lt 4) {
    $problem = 'PowerShell ' + [string]$PSVersionTable.PSVersion + ' is too old: iisfleet needs Windows PowerShell 4.0 or later.'
}
elseif ($null -eq ('IisFleet.Target.LogCollectors' -as [type])) {
    $problem = 'The iisfleet C# core is not loaded in this session (the transport loads it before the first collector).'
}
else {
    $probe = 'core'
    try {
        if ($LogDirectory -eq '') {
            # The registry is read here, not in the core: it only exists on Windows.
            $parameters = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Services\HTTP\Parameters' -ErrorAction SilentlyContinue
            if ($null -ne $parameters -and $null -ne $parameters.PSObject.Properties['ErrorLoggingDir'] -and [string]$parameters.ErrorLoggingDir -ne '') {
                $LogDirectory = ([string]$parameters.ErrorLoggingDir).TrimEnd('\') + '\HTTPERR'
            }
        }
        [IisFleet.Target.LogCollectors]::HttpErr($LogDirectory, $Since, $Until, $MaxLinesPerFile, $MaxFiles)
    }
    catch {
        $failure = $_.Exception
        if ($failure -is [System.Management.Automation.MethodInvocationException] -and $null -ne $failure.InnerException) {
            $failure = $failure.InnerException
        }
        $problem = $failure.Message
    }
}
if ($null -ne $problem) {
    $envelope = @{
        schema    = 'iisfleet.collector/1'
        collector = 'Get-IisHttpErrLog'
        version   = 2
        host      = [System.Environment]::MachineName
        time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
        data      = @{}
        errors    = @(@{ probe = $probe; target = ''; category = $(if ($probe -eq 'environment') { 'environment' } else { 'other' }); message = $problem })
    }
    ConvertTo-Json -InputObject $envelope -Depth 4 -Compress
}
