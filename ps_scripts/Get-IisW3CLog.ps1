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
        # The core returns one envelope per part, lazily: PowerShell writes each to the output stream as it
        # is produced, so a step stopped on timeout keeps the parts already written.
        [IisFleet.Target.LogCollectors]::W3C($LogDirectory, $Since, $Until, $HandshakeWindowSeconds, $MaxLinesPerFile, $MaxFiles, $MaxBytes)
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
        collector = 'Get-IisW3CLog'
        version   = 2
        host      = [System.Environment]::MachineName
        time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
        data      = @{}
        errors    = @(@{ probe = $probe; target = ''; category = $(if ($probe -eq 'environment') { 'environment' } else { 'other' }); message = $problem })
    }
    ConvertTo-Json -InputObject $envelope -Depth 4 -Compress
}
