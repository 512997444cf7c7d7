# collector-id: Get-IisCertificate/1

<#
.SYNOPSIS
    Returns every HTTP.sys SSL binding (IP:port, SNI hostname:port, Centralized Certificate Store port)
    with the certificate it names from the LocalMachine certificate store.
.DESCRIPTION
    Read-only. A thin wrapper: the work is done by IisFleet.Target.CertificateCollector in the C# core,
    which the transport compiled into this session with _core_loader.ps1. The bindings are read with
    HttpQueryServiceConfiguration (httpapi.dll), never by parsing the localized text of netsh; each
    certificate is looked up by its thumbprint in the LocalMachine store the binding names, opened
    read-only. For each certificate it returns subject, common name, DNS and IP subject alternative
    names, issuer, validity (UTC), thumbprint, whether the store holds its private key (the key itself is
    never opened), key usage and enhanced key usage. Whether a site's host name is covered and how soon a
    certificate expires is judged on the controller.
.PARAMETER MaxBindings
    The most SSL bindings reported.
.OUTPUTS
    System.String. One compact JSON envelope (schema iisfleet.collector/1).
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [int]$MaxBindings = 500
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
        collector = 'Get-IisCertificate'
        version   = 1
        host      = [string]$env:COMPUTERNAME
        time_utc  = (Get-Date).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")
        data      = @{}
        errors    = @($environmentError)
    }
    ConvertTo-Json -InputObject $refusal -Depth 4 -Compress
    return
}
[IisFleet.Target.WindowsCollectors]::Certificate($MaxBindings)
