# collector-id: Get-IisFailedRequestTrace/1

<#
.SYNOPSIS
    Returns the Failed Request Tracing (FREB) files fr*.xml of requests that ended with a given
    status code (401 by default) since a point in time.
.DESCRIPTION
    Read-only. Trace folders come from applicationHost.config (siteDefaults and each site's
    traceFailedRequestsLogging directory, W3SVC<id> subfolders) plus the IIS default folder. Only the
    start of each file is read to match failedRequest/@statusCode; matching files are returned raw
    (gzip+base64). The XML is parsed on the controller, with a hardened parser.
.PARAMETER Since
    Only files written at or after this time (ISO 8601 UTC). Empty: 24 hours before now.
.PARAMETER StatusCode
    The HTTP status a trace must record (failedRequest/@statusCode, any substatus).
.PARAMETER MaxFiles
    The most trace files returned, newest first.
.PARAMETER MaxBytes
    The most raw bytes returned across all files, before compression.
.OUTPUTS
    System.String. One compact JSON envelope (schema iisfleet.collector/1).
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [string]$Since = '',
    [int]$StatusCode = 401,
    [int]$MaxFiles = 50,
    [int]$MaxBytes = 20000000
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

function ConvertTo-UtcTime {
    # Parameter text (ISO 8601, UTC) -> DateTime in UTC; empty text -> the fallback.
    param([string]$Text, [datetime]$Fallback)
    if ([string]::IsNullOrWhiteSpace($Text)) {
        return $Fallback
    }
    $styles = [System.Globalization.DateTimeStyles]::AdjustToUniversal -bor [System.Globalization.DateTimeStyles]::AssumeUniversal
    return [System.DateTime]::Parse($Text, [System.Globalization.CultureInfo]::InvariantCulture, $styles)
}

$sinceUtc = ConvertTo-UtcTime -Text $Since -Fallback ([System.DateTime]::UtcNow.AddHours(-24))
$serverDefault = '%SystemDrive%\inetpub\logs\FailedReqLogFiles'
# failedRequest/@statusCode looks like "401.2" (or "401"); it sits on the root element near the top.
$statusPattern = [regex]('<failedRequest\b[^>]*?\sstatusCode="' + $StatusCode + '(\.\d+)?"')

$roots = New-Object -TypeName 'System.Collections.Generic.List[string]'
$appHostPath = Join-Path -Path $env:SystemRoot -ChildPath 'System32\inetsrv\config\applicationHost.config'
$config = Read-IisConfigXml -Path $appHostPath
if ($null -ne $config) {
    $siteDefault = $serverDefault
    $defaults = $config.SelectSingleNode('/configuration/system.applicationHost/sites/siteDefaults/traceFailedRequestsLogging')
    if ($null -ne $defaults -and $defaults.GetAttribute('directory') -ne '') {
        $siteDefault = $defaults.GetAttribute('directory')
    }
    foreach ($site in $config.SelectNodes('/configuration/system.applicationHost/sites/site')) {
        $siteDirectory = $siteDefault
        $tracing = $site.SelectSingleNode('traceFailedRequestsLogging')
        if ($null -ne $tracing -and $tracing.GetAttribute('directory') -ne '') {
            $siteDirectory = $tracing.GetAttribute('directory')
        }
        # String join, not Join-Path: Join-Path fails when the configured drive does not exist.
        $roots.Add($siteDirectory.TrimEnd('\') + '\W3SVC' + $site.GetAttribute('id'))
    }
    $roots.Add($siteDefault)
}
$roots.Add($serverDefault)

$searched = New-Object -TypeName 'System.Collections.Generic.List[string]'
$searchedSet = New-Object -TypeName 'System.Collections.Generic.HashSet[string]' -ArgumentList ([System.StringComparer]::OrdinalIgnoreCase)
$candidates = New-Object -TypeName 'System.Collections.Generic.List[object]'
$fileSet = New-Object -TypeName 'System.Collections.Generic.HashSet[string]' -ArgumentList ([System.StringComparer]::OrdinalIgnoreCase)
foreach ($root in $roots) {
    $expanded = [System.Environment]::ExpandEnvironmentVariables($root).TrimEnd('\')
    if (-not $searchedSet.Add($expanded) -or -not (Test-Path -LiteralPath $expanded -PathType Container)) {
        continue
    }
    $searched.Add($expanded)
    try {
        $folders = @(Get-Item -LiteralPath $expanded) + @(Get-ChildItem -LiteralPath $expanded -Directory -Filter 'W3SVC*')
        foreach ($folder in $folders) {
            foreach ($file in @(Get-ChildItem -LiteralPath $folder.FullName -File -Filter 'fr*.xml')) {
                if ($file.LastWriteTimeUtc -ge $sinceUtc -and $fileSet.Add($file.FullName)) {
                    $candidates.Add($file)
                }
            }
        }
    }
    catch {
        Add-ProbeError -Probe 'trace-directory' -Target $expanded -ErrorRecord $_
    }
}

$bytesLeft = [long]$MaxBytes
$files = New-Object -TypeName 'System.Collections.Generic.List[object]'
foreach ($file in @($candidates | Sort-Object -Property LastWriteTimeUtc -Descending)) {
    if ($files.Count -ge $MaxFiles) {
        Add-ProbeError -Probe 'max-files' -Target $file.FullName -Category 'cap' -Message ('MaxFiles ({0}) matching traces returned; older ones were skipped.' -f $MaxFiles)
        break
    }
    try {
        $bytes = [System.IO.File]::ReadAllBytes($file.FullName)
        # FREB files are UTF-8; the root element is within the first few hundred bytes.
        $head = [System.Text.Encoding]::UTF8.GetString($bytes, 0, [System.Math]::Min(4096, $bytes.Length))
        if (-not $statusPattern.IsMatch($head)) {
            continue
        }
        if ($bytes.Length -gt $bytesLeft) {
            Add-ProbeError -Probe 'max-bytes' -Target $file.FullName -Category 'cap' -Message ('MaxBytes ({0}) reached; this and older traces were skipped.' -f $MaxBytes)
            break
        }
        $bytesLeft = $bytesLeft - $bytes.Length
        $siteId = $null
        if ($file.Directory.Name -match '^W3SVC(\d+)$') {
            $siteId = [int]$Matches[1]
        }
        $files.Add([ordered]@{
                path         = $file.FullName
                site_id      = $siteId
                modified_utc = $file.LastWriteTimeUtc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
                size_bytes   = $file.Length
                content      = (ConvertTo-Blob -Bytes $bytes -Truncated $false)
            })
    }
    catch {
        Add-ProbeError -Probe 'trace-file' -Target $file.FullName -ErrorRecord $_
    }
}

$data = [ordered]@{
    directories = @($searched)
    files       = @($files)
}

$envelope = [ordered]@{
    schema    = 'iisfleet.collector/1'
    collector = 'Get-IisFailedRequestTrace'
    version   = 1
    host      = [System.Environment]::MachineName
    time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    data      = $data
    errors    = @($probeErrors)
}
ConvertTo-Json -InputObject $envelope -Depth 8 -Compress
