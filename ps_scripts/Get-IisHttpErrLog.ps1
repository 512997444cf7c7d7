# collector-id: Get-IisHttpErrLog/1

<#
.SYNOPSIS
    Returns the HTTP.sys error log (HTTPERR) lines in a time window.
.DESCRIPTION
    Read-only. HTTPERR records what HTTP.sys refused or dropped before a request reached IIS, so it
    explains requests that never appear in the W3C logs. The folder comes from the registry value
    HKLM\SYSTEM\CurrentControlSet\Services\HTTP\Parameters\ErrorLoggingDir (plus \HTTPERR) when set.
    Kept lines: every directive line and every data line inside the window, each prefixed with its
    1-based line number and a TAB. Files are streamed with System.IO.StreamReader.
.PARAMETER LogDirectory
    The HTTPERR folder. Empty: the folder from the registry, else %SystemRoot%\System32\LogFiles\HTTPERR.
.PARAMETER Since
    Start of the window, ISO 8601 UTC. Empty: 24 hours before now.
.PARAMETER Until
    End of the window, ISO 8601 UTC. Empty: now.
.PARAMETER MaxLinesPerFile
    The most lines kept per file; counting goes on, keeping stops (truncated = true).
.PARAMETER MaxFiles
    The most files read, newest first.
.OUTPUTS
    System.String. One compact JSON envelope (schema iisfleet.collector/1).
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [string]$LogDirectory = '',
    [string]$Since = '',
    [string]$Until = '',
    [int]$MaxLinesPerFile = 50000,
    [int]$MaxFiles = 50
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

function ConvertTo-UtcTime {
    # Parameter text (ISO 8601, UTC) -> DateTime in UTC; empty text -> the fallback.
    param([string]$Text, [datetime]$Fallback)
    if ([string]::IsNullOrWhiteSpace($Text)) {
        return $Fallback
    }
    $styles = [System.Globalization.DateTimeStyles]::AdjustToUniversal -bor [System.Globalization.DateTimeStyles]::AssumeUniversal
    return [System.DateTime]::Parse($Text, [System.Globalization.CultureInfo]::InvariantCulture, $styles)
}

$invariant = [System.Globalization.CultureInfo]::InvariantCulture
$nowUtc = [System.DateTime]::UtcNow
$sinceUtc = ConvertTo-UtcTime -Text $Since -Fallback $nowUtc.AddHours(-24)
$untilUtc = ConvertTo-UtcTime -Text $Until -Fallback $nowUtc
$sinceText = $sinceUtc.ToString('yyyy-MM-dd HH:mm:ss', $invariant)
$untilText = $untilUtc.ToString('yyyy-MM-dd HH:mm:ss', $invariant)

$directory = $LogDirectory
if ($directory -eq '') {
    $directory = Join-Path -Path $env:SystemRoot -ChildPath 'System32\LogFiles\HTTPERR'
    try {
        $httpParameters = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Services\HTTP\Parameters'
        $configured = $httpParameters.PSObject.Properties['ErrorLoggingDir']
        if ($null -ne $configured -and [string]$configured.Value -ne '') {
            $directory = Join-Path -Path ([string]$configured.Value) -ChildPath 'HTTPERR'
        }
    }
    catch {
        Add-ProbeError -Probe 'http-parameters' -Target 'HKLM:\SYSTEM\CurrentControlSet\Services\HTTP\Parameters' -ErrorRecord $_
    }
}
$directory = [System.Environment]::ExpandEnvironmentVariables($directory)

$selected = @()
if (Test-Path -LiteralPath $directory -PathType Container) {
    try {
        $selected = @(Get-ChildItem -LiteralPath $directory -File -Filter '*.log' |
                Where-Object -FilterScript { $_.LastWriteTimeUtc -ge $sinceUtc } |
                Sort-Object -Property LastWriteTimeUtc -Descending)
    }
    catch {
        Add-ProbeError -Probe 'log-directory' -Target $directory -ErrorRecord $_
    }
}
else {
    Add-ProbeError -Probe 'log-directory' -Target $directory -Category 'not-found' -Message 'HTTPERR directory does not exist (error logging may be off).'
}
if ($selected.Count -gt $MaxFiles) {
    Add-ProbeError -Probe 'max-files' -Target $directory -Category 'cap' -Message ('{0} files are in the window; only the newest {1} (MaxFiles) were read.' -f $selected.Count, $MaxFiles)
    $selected = @($selected | Select-Object -First $MaxFiles)
}

$files = New-Object -TypeName 'System.Collections.Generic.List[object]'
foreach ($file in $selected) {
    $excerpt = New-Object -TypeName System.Text.StringBuilder
    $lineNumber = 0
    $linesTotal = 0
    $dataLines = 0
    $linesKept = 0
    $truncated = $false
    $stream = $null
    try {
        $stream = [System.IO.File]::Open($file.FullName, [System.IO.FileMode]::Open, [System.IO.FileAccess]::Read, [System.IO.FileShare]::ReadWrite)
        $reader = New-Object -TypeName System.IO.StreamReader -ArgumentList $stream, ([System.Text.Encoding]::UTF8), $true
        while ($null -ne ($line = $reader.ReadLine())) {
            $lineNumber++
            if ($line.Length -eq 0) {
                continue
            }
            if ($line[0] -ne '#') {
                $linesTotal++
                # HTTPERR lines always start with 'date time' in UTC.
                $stamp = $line
                if ($line.Length -ge 19) {
                    $stamp = $line.Substring(0, 19)
                }
                if ([string]::CompareOrdinal($stamp, $sinceText) -lt 0 -or [string]::CompareOrdinal($stamp, $untilText) -gt 0) {
                    continue
                }
                $dataLines++
            }
            if ($truncated) {
                continue
            }
            if ($linesKept -ge $MaxLinesPerFile) {
                $truncated = $true
                Add-ProbeError -Probe 'excerpt-cap' -Target $file.FullName -Category 'cap' -Message ('MaxLinesPerFile ({0}) reached at line {1}.' -f $MaxLinesPerFile, $lineNumber)
                continue
            }
            [void]$excerpt.Append($lineNumber).Append("`t").Append($line).Append("`n")
            $linesKept++
        }
        $bytes = [System.Text.Encoding]::UTF8.GetBytes($excerpt.ToString())
        $files.Add([ordered]@{
                path        = $file.FullName
                size_bytes  = $file.Length
                lines_total = $linesTotal
                data_lines  = $dataLines
                lines_kept  = $linesKept
                truncated   = $truncated
                excerpt     = (ConvertTo-Blob -Bytes $bytes -Truncated $truncated)
            })
    }
    catch {
        Add-ProbeError -Probe 'log-file' -Target $file.FullName -ErrorRecord $_
    }
    finally {
        if ($null -ne $stream) {
            $stream.Dispose()
        }
    }
}

$data = [ordered]@{
    directory = $directory
    files     = @($files)
}

$envelope = [ordered]@{
    schema    = 'iisfleet.collector/1'
    collector = 'Get-IisHttpErrLog'
    version   = 1
    host      = [System.Environment]::MachineName
    time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    data      = $data
    errors    = @($probeErrors)
}
ConvertTo-Json -InputObject $envelope -Depth 8 -Compress
