# collector-id: Get-IisContentAcl/1

<#
.SYNOPSIS
    Returns the security descriptor (SDDL) of every site, application and virtual directory
    physical path, and the share permissions of UNC paths where they can be read.
.DESCRIPTION
    Read-only. Paths come from applicationHost.config. NTFS descriptors are read with Get-Acl.
    For a UNC path \\server\share\... the share's descriptor is read from that server's registry
    (LanmanServer\Shares\Security), opened read-only; it needs the Remote Registry service and
    rights on the server, and a failure is reported in errors[]. Who may read what is worked out
    on the controller.
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

function Get-VirtualPath {
    param([string]$ApplicationPath, [string]$DirectoryPath)
    $joined = ($ApplicationPath.TrimEnd('/') + '/' + $DirectoryPath.Trim('/')).TrimEnd('/')
    if ($joined -eq '') {
        return '/'
    }
    return $joined
}

$shareKey = 'SYSTEM\CurrentControlSet\Services\LanmanServer\Shares\Security'
$shares = @{}

function Get-ShareDescriptor {
    # The share's own ACL (not NTFS), or $null with an entry in errors[].
    param([string]$Server, [string]$Name)
    $cacheKey = ($Server + '\' + $Name).ToLowerInvariant()
    if ($shares.ContainsKey($cacheKey)) {
        return $shares[$cacheKey]
    }
    $result = $null
    $hive = $null
    try {
        $hive = [Microsoft.Win32.RegistryKey]::OpenRemoteBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, $Server)
        # OpenSubKey(name, $false): read-only handle.
        $key = $hive.OpenSubKey($shareKey, $false)
        if ($null -eq $key) {
            Add-ProbeError -Probe 'share-acl' -Target ('\\{0}\{1}' -f $Server, $Name) -Category 'not-found' -Message 'The server has no share security key.'
        }
        else {
            $binary = $key.GetValue($Name)
            $key.Dispose()
            if ($null -eq $binary) {
                # No stored descriptor means the default share permissions apply.
                $result = [ordered]@{ server = $Server; name = $Name; sddl = $null }
            }
            else {
                $descriptor = New-Object -TypeName System.Security.AccessControl.RawSecurityDescriptor -ArgumentList ([byte[]]$binary), 0
                $result = [ordered]@{ server = $Server; name = $Name; sddl = $descriptor.GetSddlForm([System.Security.AccessControl.AccessControlSections]::All) }
            }
        }
    }
    catch {
        Add-ProbeError -Probe 'share-acl' -Target ('\\{0}\{1}' -f $Server, $Name) -ErrorRecord $_
    }
    finally {
        if ($null -ne $hive) {
            $hive.Dispose()
        }
    }
    $shares[$cacheKey] = $result
    return $result
}

$paths = New-Object -TypeName 'System.Collections.Generic.List[object]'
$appHostPath = Join-Path -Path $env:SystemRoot -ChildPath 'System32\inetsrv\config\applicationHost.config'
$config = Read-IisConfigXml -Path $appHostPath
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
    foreach ($directory in $directories) {
        if ($paths.Count -ge $MaxPaths) {
            Add-ProbeError -Probe 'max-paths' -Target '' -Category 'cap' -Message ('{0} paths are configured; only the first {1} (MaxPaths) were examined.' -f $directories.Count, $MaxPaths)
            break
        }
        $expanded = [System.Environment]::ExpandEnvironmentVariables($directory.physical_path)
        $entry = [ordered]@{
            site             = $directory.site
            application_path = $directory.application_path
            virtual_path     = $directory.virtual_path
            physical_path    = $directory.physical_path
            expanded_path    = $expanded
            exists           = $false
            is_unc           = $expanded.StartsWith('\\')
            sddl             = $null
            share            = $null
        }
        try {
            $entry.exists = Test-Path -LiteralPath $expanded
            if ($entry.exists) {
                $entry.sddl = (Get-Acl -LiteralPath $expanded).Sddl
            }
            else {
                Add-ProbeError -Probe 'physical-path' -Target $expanded -Category 'not-found' -Message 'Physical path does not exist or cannot be reached from this session.'
            }
        }
        catch {
            Add-ProbeError -Probe 'ntfs-acl' -Target $expanded -ErrorRecord $_
        }
        if ($entry.is_unc) {
            $parts = $expanded.TrimStart('\').Split('\')
            if ($parts.Length -ge 2 -and $parts[0] -ne '' -and $parts[1] -ne '') {
                $entry.share = Get-ShareDescriptor -Server $parts[0] -Name $parts[1]
            }
        }
        $paths.Add($entry)
    }
}

$data = [ordered]@{
    paths = @($paths)
}

$envelope = [ordered]@{
    schema    = 'iisfleet.collector/1'
    collector = 'Get-IisContentAcl'
    version   = 1
    host      = [System.Environment]::MachineName
    time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    data      = $data
    errors    = @($probeErrors)
}
ConvertTo-Json -InputObject $envelope -Depth 8 -Compress
