# collector-id: Get-LocalUserRight/1

<#
.SYNOPSIS
    Returns the local user-rights assignment (secedit export, raw) and the local groups and users.
.DESCRIPTION
    secedit /export can only write to a file: it writes the USER_RIGHTS area and its log to two
    uniquely named files in the temp folder, which are read and then deleted in a finally block, so
    nothing is left behind. Nothing else is written. The INF file is returned byte for byte
    (UTF-16LE, base64); the controller parses it and resolves SIDs against the groups listed here.
    Group members are read through the WinNT ADSI provider, which also lists members whose SID no
    longer resolves.
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

function ConvertTo-IsoTime {
    # DateTime (or $null) -> 'yyyy-MM-ddTHH:mm:ssZ' in UTC (or $null).
    param([object]$Value)
    if ($null -eq $Value) {
        return $null
    }
    return ([datetime]$Value).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
}

$data = [ordered]@{
    secedit_inf = $null
    groups      = @()
    users       = @()
}

# secedit writes its export and its log; both go to unique temp files that are deleted below.
$tempFolder = [System.IO.Path]::GetTempPath()
$infPath = Join-Path -Path $tempFolder -ChildPath ('iisfleet-{0}.inf' -f [guid]::NewGuid().ToString('N'))
$logPath = Join-Path -Path $tempFolder -ChildPath ('iisfleet-{0}.log' -f [guid]::NewGuid().ToString('N'))
try {
    $ErrorActionPreference = 'Continue'
    $output = @(secedit.exe /export /areas USER_RIGHTS /cfg $infPath /log $logPath /quiet 2>&1)
    $exitCode = $LASTEXITCODE
    $ErrorActionPreference = 'Stop'
    if ([System.IO.File]::Exists($infPath)) {
        $bytes = [System.IO.File]::ReadAllBytes($infPath)
        $data.secedit_inf = [ordered]@{
            encoding  = 'base64'
            content   = [System.Convert]::ToBase64String($bytes)
            bytes     = $bytes.Length
            truncated = $false
        }
    }
    else {
        $outputText = $output -join ' '
        Add-ProbeError -Probe 'secedit' -Target 'secedit /export /areas USER_RIGHTS' -Category 'access-denied' -Message ('secedit wrote no export (exit code {0}): {1}' -f $exitCode, $outputText)
    }
}
catch {
    $ErrorActionPreference = 'Stop'
    Add-ProbeError -Probe 'secedit' -Target 'secedit.exe' -ErrorRecord $_
}
finally {
    foreach ($tempFile in @($infPath, $logPath)) {
        try {
            if ([System.IO.File]::Exists($tempFile)) {
                [System.IO.File]::Delete($tempFile)
            }
        }
        catch {
            # Say so loudly: the collector promises to leave nothing behind.
            Add-ProbeError -Probe 'temp-file-cleanup' -Target $tempFile -ErrorRecord $_
        }
    }
}

$groups = New-Object -TypeName 'System.Collections.Generic.List[object]'
try {
    foreach ($group in @(Get-CimInstance -ClassName Win32_Group -Filter 'LocalAccount = TRUE')) {
        $members = New-Object -TypeName 'System.Collections.Generic.List[object]'
        try {
            $adsiGroup = [ADSI]('WinNT://{0}/{1},group' -f $env:COMPUTERNAME, $group.Name)
            foreach ($member in @($adsiGroup.Invoke('Members'))) {
                $memberType = $member.GetType()
                $adsPath = [string]$memberType.InvokeMember('ADsPath', 'GetProperty', $null, $member, $null)
                $sidBytes = $memberType.InvokeMember('objectSid', 'GetProperty', $null, $member, $null)
                $sid = $null
                if ($null -ne $sidBytes) {
                    $sid = (New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList ([byte[]]$sidBytes), 0).Value
                }
                # 'WinNT://CORP/alice' -> 'CORP\alice'; an unresolved SID shows as 'WinNT://S-1-5-21-...'
                $name = $adsPath -replace '^WinNT://', '' -replace '/', '\'
                $members.Add([ordered]@{ name = $name; sid = $sid })
            }
        }
        catch {
            Add-ProbeError -Probe 'group-members' -Target $group.Name -ErrorRecord $_
        }
        $groups.Add([ordered]@{ name = [string]$group.Name; sid = [string]$group.SID; members = @($members) })
    }
}
catch {
    Add-ProbeError -Probe 'groups' -Target 'Win32_Group' -ErrorRecord $_
}
$data.groups = @($groups)

$users = New-Object -TypeName 'System.Collections.Generic.List[object]'
try {
    # Win32_UserAccount and the WinNT ADSI provider, because Get-LocalUser (PowerShell 5.1) does not
    # exist on Server 2012 R2. ADS_UF_PASSWORD_EXPIRED (0x800000) in UserFlags means "has expired";
    # Win32_UserAccount.PasswordExpires only says whether it can expire.
    $now = [System.DateTime]::Now
    foreach ($account in @(Get-CimInstance -ClassName Win32_UserAccount -Filter 'LocalAccount = TRUE')) {
        $flags = 0
        $accountExpires = $null
        $passwordLastSet = $null
        try {
            $adsiUser = [ADSI]('WinNT://{0}/{1},user' -f $env:COMPUTERNAME, $account.Name)
            $flags = [int]$adsiUser.Properties['UserFlags'].Value
            $age = $adsiUser.Properties['PasswordAge'].Value
            if ($null -ne $age) {
                $passwordLastSet = $now.AddSeconds(-[double]$age)
            }
            $expires = $adsiUser.Properties['AccountExpirationDate'].Value
            if ($null -ne $expires) {
                $accountExpires = [datetime]$expires
            }
        }
        catch {
            Add-ProbeError -Probe 'user-flags' -Target ([string]$account.Name) -ErrorRecord $_
        }
        $users.Add([ordered]@{
                name              = [string]$account.Name
                sid               = [string]$account.SID
                enabled           = (-not [bool]$account.Disabled)
                locked_out        = [bool]$account.Lockout
                password_expired  = (($flags -band 0x800000) -ne 0)
                password_required = [bool]$account.PasswordRequired
                account_expires   = ConvertTo-IsoTime -Value $accountExpires
                password_last_set = ConvertTo-IsoTime -Value $passwordLastSet
            })
    }
}
catch {
    Add-ProbeError -Probe 'users' -Target 'Win32_UserAccount' -ErrorRecord $_
}
$data.users = @($users)

$envelope = [ordered]@{
    schema    = 'iisfleet.collector/1'
    collector = 'Get-LocalUserRight'
    version   = 1
    host      = [System.Environment]::MachineName
    time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    data      = $data
    errors    = @($probeErrors)
}
ConvertTo-Json -InputObject $envelope -Depth 8 -Compress
