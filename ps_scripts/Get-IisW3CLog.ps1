# collector-id: Get-IisW3CLog/2

<#
.SYNOPSIS
    Returns the terminal HTTP 401s of the IIS W3C logs in a time window, and counts the handshake 401s.
.DESCRIPTION
    Read-only. A thin wrapper: the work happens in the iisfleet C# core (IisFleet.Target.LogCollectors),
    compiled once per session by the transport's loader. Log folders come from applicationHost.config
    (every site's logFile directory, the siteDefaults and central W3C directories) plus the server
    default. Files are chosen by the date in their name and the time of their last lines, never by
    LastWriteTime alone, opened with FileShare.ReadWrite|Delete (IIS keeps writing them), and entered
    at Since by a binary search when large. Each 401 is classified on the host with the controller's
    rule: handshakes are counted per site/substatus/win32; terminal 401s are kept as lines with the
    same client's other lines inside the window. Caps keep the newest lines. The output is several
    compact JSON envelopes (one per file, as each is done), merged by the controller.
.PARAMETER LogDirectory
    Folders to search instead of the ones from applicationHost.config. Each folder and its
    W3SVC<n> subfolders are searched for *.log files.
.PARAMETER Since
    Start of the window, ISO 8601 UTC. Empty: 24 hours before now.
.PARAMETER Until
    End of the window, ISO 8601 UTC. Empty: now.
.PARAMETER HandshakeWindowSeconds
    How long after a 401 a success of the same client and URL makes it a handshake.
.PARAMETER MaxLinesPerFile
    The most lines kept per file; the oldest kept lines are dropped first (truncated = true).
.PARAMETER MaxFiles
    The most files read, newest first.
.PARAMETER MaxBytes
    The most bytes of kept lines across all files, before compression.
.OUTPUTS
    System.String. Compact JSON envelopes (schema iisfleet.collector/1), each marked with its part.
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [string[]]$LogDirectory = @(),
    [string]$Since = '',
    [string]$Until = '',
    [int]$HandshakeWindowSeconds = 30,
    [int]$MaxLinesPerFile = 200000,
    [int]$MaxFiles = 200,
    [int]$MaxBytes = 50000000
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
        collector = 'Get-IisW3CLog'
        version   = 2
        host      = [string]$env:COMPUTERNAME
        time_utc  = (Get-Date).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")
        data      = @{}
        errors    = @($environmentError)
    }
    ConvertTo-Json -InputObject $refusal -Depth 4 -Compress
    return
}
# The core returns one envelope per part, lazily: PowerShell writes each to the output stream as it is
# produced, so a step stopped on timeout keeps the parts already written.
[IisFleet.Target.LogCollectors]::W3C($LogDirectory, $Since, $Until, $HandshakeWindowSeconds, $MaxLinesPerFile, $MaxFiles, $MaxBytes)
