# collector-id: Get-IisRawArtefact/1

<#
.SYNOPSIS
    Copies the raw evidence files of an IIS server, hashed on the host, in fixed-size chunks.
.DESCRIPTION
    Read-only. A thin wrapper: the work happens in the iisfleet C# core (IisFleet.Target.RawArtefactCollector),
    compiled once per session by the transport's loader. It sends applicationHost.config,
    redirection.config, administration.config, every web.config below the sites' physical paths, the
    Failed Request Tracing files, HTTPERR and W3C logs of the window (chosen by the date in their name and
    the time of their last lines, never LastWriteTime), the Security/System/Application event logs of the
    window exported as .evtx, and the secedit export. Files are opened with FileShare.ReadWrite|Delete
    (HTTP.sys keeps writing its logs); each file's size and SHA-256 are taken before its first chunk and
    only those bytes are sent, one output object per chunk. The event log and secedit exports are written
    to a new folder in the temp folder, each export deleted once sent and the folder removed in a finally
    block. Have lists what the controller kept from an interrupted attempt, so only the missing bytes travel.
.PARAMETER Since
    Start of the window, ISO 8601 UTC. Empty: 24 hours before now.
.PARAMETER Until
    End of the window, ISO 8601 UTC. Empty: now.
.PARAMETER Kinds
    What to send, any of config, webconfig, freb, secedit, evtx, httperr, w3c. Empty: all of them.
.PARAMETER EventLogs
    The event logs exported. Empty: Security, System and Application.
.PARAMETER ChunkBytes
    Bytes per chunk (one output object each), kept between 65536 and 16777216.
.PARAMETER MaxTotalBytes
    The most file bytes sent by this step; a file that would pass it is listed, not sent. 0: no cap.
.PARAMETER Have
    What the controller already holds, one "<sha256><TAB><size><TAB><received><TAB><host path>" per file.
.PARAMETER HttpErrDirectory
    The HTTPERR folder. Empty: the HTTP service's ErrorLoggingDir, else the Windows default.
.OUTPUTS
    System.String. Compact JSON envelopes (schema iisfleet.collector/1), each marked with its part.
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [string]$Since = '',
    [string]$Until = '',
    [string[]]$Kinds = @(),
    [string[]]$EventLogs = @(),
    [int]$ChunkBytes = 4194304,
    [long]$MaxTotalBytes = 0,
    [string[]]$Have = @(),
    [string]$HttpErrDirectory = ''
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
        collector = 'Get-IisRawArtefact'
        version   = 1
        host      = [string]$env:COMPUTERNAME
        time_utc  = (Get-Date).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")
        data      = @{}
        errors    = @($environmentError)
    }
    ConvertTo-Json -InputObject $refusal -Depth 4 -Compress
    return
}
if ($HttpErrDirectory -eq '') {
    # The registry is read here, not in the core: it only exists on Windows.
    $parameters = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Services\HTTP\Parameters' -ErrorAction SilentlyContinue
    if ($null -ne $parameters -and $null -ne $parameters.PSObject.Properties['ErrorLoggingDir'] -and [string]$parameters.ErrorLoggingDir -ne '') {
        $HttpErrDirectory = ([string]$parameters.ErrorLoggingDir).TrimEnd('\') + '\HTTPERR'
    }
}
# One envelope per part (a header per file, then one per chunk), written as each is produced: a step
# stopped on timeout keeps what was sent, and the controller resumes from there with Have.
[IisFleet.Target.WindowsCollectors]::RawArtefact($Since, $Until, $Kinds, $EventLogs, $ChunkBytes, $MaxTotalBytes, $Have, $HttpErrDirectory)
