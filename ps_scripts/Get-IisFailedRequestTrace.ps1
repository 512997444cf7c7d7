# collector-id: Get-IisFailedRequestTrace/2

<#
.SYNOPSIS
    Returns the Failed Request Tracing (FREB) files fr*.xml of requests that ended with a given
    status code (401 by default) since a point in time.
.DESCRIPTION
    Read-only. A thin wrapper: the work is done by IisFleet.Target.FrebCollector in the C# core, which
    the transport compiled into this session with _core_loader.ps1. Trace folders come from
    applicationHost.config (siteDefaults and each site's traceFailedRequestsLogging directory, W3SVC<id>
    subfolders) plus the IIS default folder. Only the head of each file is read to match
    failedRequest/@statusCode and to take the request's time (the first event's SystemTime); matching
    files are returned whole (gzip+base64), newest first. The XML is parsed on the controller.
.PARAMETER Since
    Only traces of requests at or after this time (ISO 8601 UTC). Empty: 24 hours before now.
.PARAMETER StatusCode
    The HTTP status a trace must record (failedRequest/@statusCode, any substatus).
.PARAMETER MaxFiles
    The most trace files returned, newest first.
.PARAMETER MaxBytes
    The most raw bytes returned across all files, before compression; a trace that does not fit is
    left out whole, never cut.
.OUTPUTS
    System.String. One compact JSON envelope (schema iisfleet.collector/1).
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [string]$Since = '',
    [int]$StatusCode = 401,
    [int]$MaxFiles = 50,
    [int]$MaxBytes = 20000000
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
        collector = 'Get-IisFailedRequestTrace'
        version   = 2
        host      = [string]$env:COMPUTERNAME
        time_utc  = (Get-Date).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")
        data      = @{}
        errors    = @($environmentError)
    }
    ConvertTo-Json -InputObject $refusal -Depth 4 -Compress
    return
}
[IisFleet.Target.FrebCollector]::Collect([IisFleet.Target.LocalHost]::Instance, $Since, $StatusCode, $MaxFiles, $MaxBytes)
