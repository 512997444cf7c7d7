# collector-id: Get-IisConfig/2

<#
.SYNOPSIS
    Returns the raw IIS configuration: applicationHost.config, redirection.config (and whether shared
    configuration is on) and every web.config under each site, application and virtual directory.
.DESCRIPTION
    Read-only. A thin wrapper: the work is done by IisFleet.Target.ConfigCollector in the C# core, which
    the transport compiled into this session with _core_loader.ps1. Files are returned byte for byte,
    whole or not at all (gzip+base64 blobs with SHA-256); applicationHost.config is never cut and never
    charged to MaxBytes. Encrypted attributes stay encrypted: the files are read, never decrypted.
.PARAMETER MaxWebConfigDepth
    How many folder levels below each physical path are searched for web.config files.
.PARAMETER MaxWebConfigCount
    The most web.config files returned; more are reported in errors[] (category cap).
.PARAMETER MaxBytes
    The most raw bytes of web.config and redirection.config files returned. A file that does not fit
    is left out whole (errors[], category cap), never cut.
.OUTPUTS
    System.String. One compact JSON envelope (schema iisfleet.collector/1).
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [int]$MaxWebConfigDepth = 3,
    [int]$MaxWebConfigCount = 200,
    [int]$MaxBytes = 8000000
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
        collector = 'Get-IisConfig'
        version   = 2
        host      = [string]$env:COMPUTERNAME
        time_utc  = (Get-Date).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")
        data      = @{}
        errors    = @($environmentError)
    }
    ConvertTo-Json -InputObject $refusal -Depth 4 -Compress
    return
}
[IisFleet.Target.ConfigCollector]::Collect([IisFleet.Target.LocalHost]::Instance, $MaxWebConfigDepth, $MaxWebConfigCount, $MaxBytes)
