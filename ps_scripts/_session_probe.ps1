# collector-id: _session_probe/1

<#
.SYNOPSIS
    Reports what this PowerShell session may do: version, language mode, elevation, groups, and whether
    the IIS configuration folder and the Security log are readable. Used by `iisfleet hosts check`.
.DESCRIPTION
    Read-only. Opens applicationHost.config for reading and closes it at once; reads at most one Security
    event. Under ConstrainedLanguage or a stricter mode it reports the mode and stops: the rest needs .NET.
    Written for PowerShell 3.0 and later (no ::new, no classes) and safe to start in ConstrainedLanguage.
.OUTPUTS
    System.String. One compact JSON document (schema iisfleet.session/1).
#>
[CmdletBinding()]
[OutputType([string])]
param()

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$mode = [string]$ExecutionContext.SessionState.LanguageMode
$result = [ordered]@{
    schema                  = 'iisfleet.session/1'
    ps_version              = [string]$PSVersionTable.PSVersion
    language_mode           = $mode
    user                    = $null
    elevated                = $null
    groups                  = @()
    inetsrv_config_readable = $null
    security_log_readable   = $null
}

if ($mode -eq 'FullLanguage') {
    $identity = [System.Security.Principal.WindowsIdentity]::GetCurrent()
    # A cast uses WindowsPrincipal's one-argument constructor (PowerShell 3.0+ has no ::new).
    $principal = [System.Security.Principal.WindowsPrincipal]$identity
    $result.user = $identity.Name
    # False for a UAC-filtered token: Administrators is then present only as a deny-only group.
    $result.elevated = $principal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator)
    $wanted = @{ 'S-1-5-32-544' = 'Administrators'; 'S-1-5-32-573' = 'Event Log Readers'; 'S-1-5-32-580' = 'Remote Management Users' }
    $groups = @()
    foreach ($group in $identity.Groups) {
        if ($wanted.ContainsKey($group.Value)) {
            $groups += $wanted[$group.Value]
        }
    }
    $result.groups = $groups

    $appHost = Join-Path -Path $env:SystemRoot -ChildPath 'System32\inetsrv\config\applicationHost.config'
    try {
        $stream = [System.IO.File]::OpenRead($appHost)
        $stream.Dispose()
        $result.inetsrv_config_readable = $true
    }
    catch {
        $inner = $_.Exception
        if ($null -ne $inner.InnerException) { $inner = $inner.InnerException }
        if ($inner -is [System.UnauthorizedAccessException]) { $result.inetsrv_config_readable = $false }
    }
    try {
        $null = Get-WinEvent -LogName 'Security' -MaxEvents 1 -ErrorAction Stop
        $result.security_log_readable = $true
    }
    catch {
        $inner = $_.Exception
        if ($null -ne $inner.InnerException) { $inner = $inner.InnerException }
        if ($inner -is [System.UnauthorizedAccessException]) { $result.security_log_readable = $false }
        elseif ($_.FullyQualifiedErrorId -like 'NoMatchingEventsFound*') { $result.security_log_readable = $true }
    }
}

ConvertTo-Json -InputObject $result -Compress
