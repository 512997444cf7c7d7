# collector-id: Get-HostFact/1

<#
.SYNOPSIS
    Reports basic facts about a Windows host: OS, domain membership, clock, PowerShell and IIS.
.DESCRIPTION
    Read-only. Reads CIM classes Win32_OperatingSystem and Win32_ComputerSystem, the registry key
    HKLM\SOFTWARE\Microsoft\InetStp (IIS version) and the globalModules list of
    applicationHost.config (installed IIS authentication and authorization modules).
    Writes nothing on the host. A probe that fails is listed in errors[]; the rest still arrives.
.OUTPUTS
    System.String. One compact JSON envelope (schema iisfleet.collector/1).
#>
[CmdletBinding()]
[OutputType([string])]
param()

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$probeErrors = New-Object -TypeName 'System.Collections.Generic.List[object]'

function Add-ProbeError {
    # A failed sub-probe becomes data in errors[]; collection continues.
    param(
        [string]$Probe,
        [string]$Target = '',
        [System.Management.Automation.ErrorRecord]$ErrorRecord = $null,
        [string]$Category = 'other',
        [string]$Message = ''
    )
    if ($null -ne $ErrorRecord) {
        # .NET method failures arrive wrapped in MethodInvocationException; classify the inner one.
        $exception = $ErrorRecord.Exception
        if ($exception -is [System.Management.Automation.MethodInvocationException] -and $null -ne $exception.InnerException) {
            $exception = $exception.InnerException
        }
        $Message = $exception.Message
        if ($exception -is [System.UnauthorizedAccessException] -or
            $exception -is [System.Security.SecurityException] -or
            $ErrorRecord.CategoryInfo.Category -eq 'PermissionDenied') {
            $Category = 'access-denied'
        }
        elseif ($exception -is [System.IO.FileNotFoundException] -or
            $exception -is [System.IO.DirectoryNotFoundException] -or
            $ErrorRecord.CategoryInfo.Category -eq 'ObjectNotFound') {
            $Category = 'not-found'
        }
        elseif ($exception -is [System.IO.IOException]) {
            $Category = 'io'
        }
    }
    $probeErrors.Add([ordered]@{ probe = $Probe; target = $Target; category = $Category; message = $Message })
}

$data = [ordered]@{
    computer_name = [System.Environment]::MachineName
    fqdn          = $null
    domain        = $null
    domain_joined = $false
    os_caption    = $null
    os_version    = $null
    os_build      = $null
    ps_version    = $PSVersionTable.PSVersion.ToString()
    utc_now       = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    iis_installed = $false
    iis_version   = $null
    auth_modules  = @()
    time_zone     = [System.TimeZoneInfo]::Local.Id
}

try {
    $os = Get-CimInstance -ClassName Win32_OperatingSystem
    $data.os_caption = [string]$os.Caption
    $data.os_version = [string]$os.Version
    $data.os_build = [string]$os.BuildNumber
}
catch {
    Add-ProbeError -Probe 'os' -Target 'Win32_OperatingSystem' -ErrorRecord $_
}

try {
    $computer = Get-CimInstance -ClassName Win32_ComputerSystem
    $data.domain_joined = [bool]$computer.PartOfDomain
    $data.domain = [string]$computer.Domain
    $data.fqdn = [string]$computer.DNSHostName
    if ($computer.PartOfDomain) {
        $data.fqdn = '{0}.{1}' -f $computer.DNSHostName, $computer.Domain
    }
}
catch {
    Add-ProbeError -Probe 'computer' -Target 'Win32_ComputerSystem' -ErrorRecord $_
}

$inetStp = 'HKLM:\SOFTWARE\Microsoft\InetStp'
if (Test-Path -LiteralPath $inetStp) {
    $data.iis_installed = $true
    try {
        $iis = Get-ItemProperty -LiteralPath $inetStp
        $data.iis_version = '{0}.{1}' -f $iis.MajorVersion, $iis.MinorVersion
    }
    catch {
        Add-ProbeError -Probe 'iis-version' -Target $inetStp -ErrorRecord $_
    }
}
else {
    Add-ProbeError -Probe 'iis' -Target $inetStp -Category 'not-installed' -Message 'IIS is not installed (no InetStp registry key).'
}

$appHostPath = Join-Path -Path $env:SystemRoot -ChildPath 'System32\inetsrv\config\applicationHost.config'
if ($data.iis_installed) {
    try {
        $config = New-Object -TypeName System.Xml.XmlDocument
        $config.XmlResolver = $null
        $config.LoadXml([System.IO.File]::ReadAllText($appHostPath))
        # Module names only; which of them are enabled where is the config parser's job.
        $names = New-Object -TypeName 'System.Collections.Generic.List[string]'
        foreach ($module in $config.SelectNodes('/configuration/system.webServer/globalModules/add')) {
            $name = $module.GetAttribute('name')
            if ($name -match 'Auth') {
                $names.Add($name)
            }
        }
        $data.auth_modules = @($names)
    }
    catch {
        Add-ProbeError -Probe 'globalModules' -Target $appHostPath -ErrorRecord $_
    }
}

$envelope = [ordered]@{
    schema    = 'iisfleet.collector/1'
    collector = 'Get-HostFact'
    version   = 1
    host      = [System.Environment]::MachineName
    time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    data      = $data
    errors    = @($probeErrors)
}
ConvertTo-Json -InputObject $envelope -Depth 6 -Compress
