# collector-id: Get-IisContentAcl/2

<#
.SYNOPSIS
    Returns the security descriptor (SDDL) of every site, application and virtual directory
    physical path, and the share permissions of UNC paths where they can be read.
.DESCRIPTION
    Read-only. A thin wrapper: the work is done by IisFleet.Target.ContentAclCollector in the C# core,
    which the transport compiled into this session with _core_loader.ps1. Paths come from
    applicationHost.config. A path this session may not see is reported as access-denied, never as
    not-found (Test-Path and Directory.Exists answer false for both). For a UNC path \\server\share\...
    the share's descriptor is read from that server's registry (LanmanServer\Shares\Security), opened
    read-only; it needs the Remote Registry service and rights on the server, and a failure is reported
    in errors[]. Who may read what is worked out on the controller.
.PARAMETER MaxPaths
    The most physical paths examined.
.OUTPUTS
    System.String. One compact JSON envelope (schema iisfleet.collector/1).
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [int]$MaxPaths = 200
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
        collector = 'Get-IisContentAcl'
        version   = 2
        host      = [string]$env:COMPUTERNAME
        time_utc  = (Get-Date).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")
        data      = @{}
        errors    = @($environmentError)
    }
    ConvertTo-Json -InputObject $refusal -Depth 4 -Compress
    return
}
[IisFleet.Target.WindowsCollectors]::ContentAcl($MaxPaths)
