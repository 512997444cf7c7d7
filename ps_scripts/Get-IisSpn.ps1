# collector-id: Get-IisSpn/1

<#
.SYNOPSIS
    Returns the raw output of 'setspn -L' for the machine account and every application pool that
    runs as a specific user.
.DESCRIPTION
    Read-only: 'setspn -L' only lists SPNs (an LDAP read against a domain controller). The pool
    identities come from applicationHost.config; pools running as ApplicationPoolIdentity or
    NetworkService reach the network as the machine account, which is always queried. The output is
    returned as printed; the controller parses it and looks for duplicates across the fleet.
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

function Read-IisConfigXml {
    # applicationHost.config parsed only to find paths; interpretation happens on the controller.
    param([string]$Path)
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) {
        Add-ProbeError -Probe 'applicationHost.config' -Target $Path -Category 'not-installed' -Message 'applicationHost.config not found; is IIS installed?'
        return $null
    }
    try {
        $document = New-Object -TypeName System.Xml.XmlDocument
        $document.XmlResolver = $null
        $document.LoadXml([System.IO.File]::ReadAllText($Path))
        # The leading comma stops PowerShell from unrolling the document into its child nodes.
        return , $document
    }
    catch {
        Add-ProbeError -Probe 'applicationHost.config' -Target $Path -ErrorRecord $_
        return $null
    }
}

$machineAccount = $env:COMPUTERNAME + '$'
$outputs = @{}

function Get-SpnListing {
    # One 'setspn -L' run per distinct account; the same account is never queried twice.
    param([string]$Account, [string]$Source)
    if (-not $outputs.ContainsKey($Account)) {
        $ErrorActionPreference = 'Continue'
        $lines = @(setspn.exe -L $Account 2>&1)
        $outputs[$Account] = [ordered]@{ exit_code = $LASTEXITCODE; output = ($lines -join "`n") }
        $ErrorActionPreference = 'Stop'
    }
    return [ordered]@{
        account   = $Account
        source    = $Source
        command   = 'setspn -L ' + $Account
        exit_code = $outputs[$Account].exit_code
        output    = $outputs[$Account].output
    }
}

$queries = New-Object -TypeName 'System.Collections.Generic.List[object]'
try {
    # setspn resolves a bare computer name to the computer account (DOMAIN\NAME$).
    $queries.Add((Get-SpnListing -Account $env:COMPUTERNAME -Source 'machine'))
}
catch {
    Add-ProbeError -Probe 'setspn' -Target $env:COMPUTERNAME -ErrorRecord $_
}

$appHostPath = Join-Path -Path $env:SystemRoot -ChildPath 'System32\inetsrv\config\applicationHost.config'
$config = Read-IisConfigXml -Path $appHostPath
if ($null -ne $config) {
    # A pool inherits identityType/userName from applicationPoolDefaults unless it sets them.
    $defaultType = 'ApplicationPoolIdentity'
    $defaultUser = ''
    $defaults = $config.SelectSingleNode('/configuration/system.applicationHost/applicationPools/applicationPoolDefaults/processModel')
    if ($null -ne $defaults) {
        if ($defaults.HasAttribute('identityType')) {
            $defaultType = $defaults.GetAttribute('identityType')
        }
        $defaultUser = $defaults.GetAttribute('userName')
    }
    foreach ($pool in $config.SelectNodes('/configuration/system.applicationHost/applicationPools/add')) {
        $identityType = $defaultType
        $account = $defaultUser
        $processModel = $pool.SelectSingleNode('processModel')
        if ($null -ne $processModel) {
            if ($processModel.HasAttribute('identityType')) {
                $identityType = $processModel.GetAttribute('identityType')
            }
            if ($processModel.HasAttribute('userName')) {
                $account = $processModel.GetAttribute('userName')
            }
        }
        if ($identityType -ne 'SpecificUser' -or $account -eq '') {
            continue
        }
        try {
            $queries.Add((Get-SpnListing -Account $account -Source ('app-pool:' + $pool.GetAttribute('name'))))
        }
        catch {
            Add-ProbeError -Probe 'setspn' -Target $account -ErrorRecord $_
        }
    }
}

$data = [ordered]@{
    machine_account = $machineAccount
    queries         = @($queries)
}

$envelope = [ordered]@{
    schema    = 'iisfleet.collector/1'
    collector = 'Get-IisSpn'
    version   = 1
    host      = [System.Environment]::MachineName
    time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    data      = $data
    errors    = @($probeErrors)
}
ConvertTo-Json -InputObject $envelope -Depth 8 -Compress
