# collector-id: Get-IisConfig/1

<#
.SYNOPSIS
    Returns the raw IIS configuration: applicationHost.config, redirection.config and every
    web.config under each site, application and virtual directory physical path.
.DESCRIPTION
    Read-only. Files are returned byte for byte (gzip+base64 blobs); nothing is interpreted here.
    applicationHost.config is parsed on the host only to learn the physical paths to search.
    Encrypted attributes stay encrypted: the files are read, never decrypted.
.PARAMETER MaxWebConfigDepth
    How many folder levels below each physical path are searched for web.config files.
.PARAMETER MaxWebConfigCount
    The most web.config files returned; more are reported in errors[] (category cap).
.PARAMETER MaxBytes
    The most raw bytes returned across all files, before compression. A file cut by this cap has
    truncated = true.
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

function ConvertTo-Blob {
    # Raw payload -> blob object (docs/contracts.md 1.2). Compression happens in memory only.
    param([byte[]]$Bytes, [bool]$Truncated = $false)
    $buffer = New-Object -TypeName System.IO.MemoryStream
    $gzip = New-Object -TypeName System.IO.Compression.GZipStream -ArgumentList $buffer, ([System.IO.Compression.CompressionMode]::Compress)
    try {
        $gzip.Write($Bytes, 0, $Bytes.Length)
    }
    finally {
        $gzip.Dispose()
    }
    return [ordered]@{
        encoding  = 'gzip+base64'
        content   = [System.Convert]::ToBase64String($buffer.ToArray())
        bytes     = $Bytes.Length
        truncated = $Truncated
    }
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

function Get-VirtualPath {
    param([string]$ApplicationPath, [string]$DirectoryPath)
    $joined = ($ApplicationPath.TrimEnd('/') + '/' + $DirectoryPath.Trim('/')).TrimEnd('/')
    if ($joined -eq '') {
        return '/'
    }
    return $joined
}

$budget = @{ remaining = $MaxBytes }

function Read-FileBlob {
    # Reads a whole file (sharing it with IIS) and charges it to the byte budget.
    param([string]$Path)
    $stream = [System.IO.File]::Open($Path, [System.IO.FileMode]::Open, [System.IO.FileAccess]::Read, [System.IO.FileShare]::ReadWrite)
    try {
        $keep = [int][System.Math]::Max(0, [System.Math]::Min([long]$budget.remaining, $stream.Length))
        $bytes = New-Object -TypeName 'byte[]' -ArgumentList $keep
        $read = 0
        while ($read -lt $keep) {
            $count = $stream.Read($bytes, $read, $keep - $read)
            if ($count -eq 0) {
                break
            }
            $read += $count
        }
        $truncated = $read -lt $stream.Length
    }
    finally {
        $stream.Dispose()
    }
    if ($read -lt $keep) {
        $cut = New-Object -TypeName 'byte[]' -ArgumentList $read
        [System.Array]::Copy($bytes, $cut, $read)
        $bytes = $cut
    }
    $budget.remaining = $budget.remaining - $read
    if ($truncated) {
        Add-ProbeError -Probe 'max-bytes' -Target $Path -Category 'cap' -Message ('MaxBytes ({0}) reached; the file was cut.' -f $MaxBytes)
    }
    return ConvertTo-Blob -Bytes $bytes -Truncated $truncated
}

$configFolder = Join-Path -Path $env:SystemRoot -ChildPath 'System32\inetsrv\config'
$appHostPath = Join-Path -Path $configFolder -ChildPath 'applicationHost.config'
$redirectionPath = Join-Path -Path $configFolder -ChildPath 'redirection.config'

$data = [ordered]@{
    application_host_config = $null
    web_configs             = @()
    redirection_config      = $null
}

$config = Read-IisConfigXml -Path $appHostPath
if ($null -ne $config) {
    try {
        $data.application_host_config = [ordered]@{ path = $appHostPath; content = (Read-FileBlob -Path $appHostPath) }
    }
    catch {
        Add-ProbeError -Probe 'applicationHost.config' -Target $appHostPath -ErrorRecord $_
    }
}

if (Test-Path -LiteralPath $redirectionPath -PathType Leaf) {
    try {
        $data.redirection_config = [ordered]@{ path = $redirectionPath; content = (Read-FileBlob -Path $redirectionPath) }
    }
    catch {
        Add-ProbeError -Probe 'redirection.config' -Target $redirectionPath -ErrorRecord $_
    }
}

$webConfigs = New-Object -TypeName 'System.Collections.Generic.List[object]'
$seen = New-Object -TypeName 'System.Collections.Generic.HashSet[string]' -ArgumentList ([System.StringComparer]::OrdinalIgnoreCase)
$capReported = $false
if ($null -ne $config) {
    $directories = New-Object -TypeName 'System.Collections.Generic.List[object]'
    foreach ($site in $config.SelectNodes('/configuration/system.applicationHost/sites/site')) {
        foreach ($application in $site.SelectNodes('application')) {
            foreach ($directory in $application.SelectNodes('virtualDirectory')) {
                $directories.Add([ordered]@{
                        site             = $site.GetAttribute('name')
                        application_path = $application.GetAttribute('path')
                        virtual_path     = Get-VirtualPath -ApplicationPath $application.GetAttribute('path') -DirectoryPath $directory.GetAttribute('path')
                        physical_path    = $directory.GetAttribute('physicalPath')
                    })
            }
        }
    }
    # Deepest virtual paths first, so a web.config inside a nested application is attributed to it.
    $ordered = $directories | Sort-Object -Property { $_.virtual_path.Length } -Descending
    foreach ($directory in $ordered) {
        $expanded = [System.Environment]::ExpandEnvironmentVariables($directory.physical_path).TrimEnd('\')
        if ($expanded -eq '' -or -not (Test-Path -LiteralPath $expanded -PathType Container)) {
            Add-ProbeError -Probe 'physical-path' -Target $expanded -Category 'not-found' -Message ('Physical path of {0}{1} does not exist or cannot be reached.' -f $directory.site, $directory.virtual_path)
            continue
        }
        # Level by level, because Get-ChildItem -Depth needs PowerShell 5.0; junctions are not followed.
        $found = New-Object -TypeName 'System.Collections.Generic.List[object]'
        $level = @($expanded)
        for ($depth = 0; $depth -le $MaxWebConfigDepth -and $level.Count -gt 0; $depth++) {
            $next = New-Object -TypeName 'System.Collections.Generic.List[string]'
            foreach ($folder in $level) {
                $walkErrors = $null
                foreach ($item in @(Get-ChildItem -LiteralPath $folder -Force -ErrorAction SilentlyContinue -ErrorVariable walkErrors)) {
                    if ($item.PSIsContainer) {
                        if (($item.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -eq 0) {
                            $next.Add($item.FullName)
                        }
                    }
                    elseif ($item.Name -eq 'web.config') {
                        $found.Add($item)
                    }
                }
                foreach ($walkError in @($walkErrors)) {
                    if ($null -ne $walkError) {
                        Add-ProbeError -Probe 'web.config-search' -Target $folder -ErrorRecord $walkError
                    }
                }
            }
            $level = @($next)
        }
        foreach ($file in $found) {
            if ($file.Name -ne 'web.config' -or -not $seen.Add($file.FullName)) {
                continue
            }
            if ($webConfigs.Count -ge $MaxWebConfigCount) {
                if (-not $capReported) {
                    Add-ProbeError -Probe 'max-web-config-count' -Target $file.FullName -Category 'cap' -Message ('MaxWebConfigCount ({0}) reached; further web.config files were skipped.' -f $MaxWebConfigCount)
                    $capReported = $true
                }
                continue
            }
            $relative = $file.DirectoryName.Substring($expanded.Length).Replace('\', '/')
            try {
                $webConfigs.Add([ordered]@{
                        site             = $directory.site
                        application_path = $directory.application_path
                        virtual_path     = Get-VirtualPath -ApplicationPath $directory.virtual_path -DirectoryPath $relative
                        physical_path    = $directory.physical_path
                        path             = $file.FullName
                        content          = (Read-FileBlob -Path $file.FullName)
                    })
            }
            catch {
                Add-ProbeError -Probe 'web.config' -Target $file.FullName -ErrorRecord $_
            }
        }
    }
}
$data.web_configs = @($webConfigs)

$envelope = [ordered]@{
    schema    = 'iisfleet.collector/1'
    collector = 'Get-IisConfig'
    version   = 1
    host      = [System.Environment]::MachineName
    time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    data      = $data
    errors    = @($probeErrors)
}
ConvertTo-Json -InputObject $envelope -Depth 8 -Compress
