# collector-id: Get-IisW3CLog/1

<#
.SYNOPSIS
    Returns the HTTP 401 lines of the IIS W3C logs in a time window, with the lines needed to
    classify each 401 as a handshake step or a final refusal.
.DESCRIPTION
    Read-only. Log folders come from applicationHost.config (every site's logFile directory, the
    central W3C log and the server default), never only the default path. Each file is streamed
    with System.IO.StreamReader, shared with IIS, which may be writing it.
    Kept lines: every directive line (#Fields ...), every 401 line, and every later line from a
    client (c-ip + User-Agent) that had a 401 at most HandshakeWindowSeconds earlier. Each kept
    line is prefixed with its 1-based line number and a TAB. Counting and filtering happen here;
    classification happens on the controller.
.PARAMETER LogDirectory
    Folders to search instead of the ones from applicationHost.config. Each folder and its
    W3SVC<n> subfolders are searched for *.log files.
.PARAMETER Since
    Start of the window, ISO 8601 UTC. Empty: 24 hours before now.
.PARAMETER Until
    End of the window, ISO 8601 UTC. Empty: now.
.PARAMETER HandshakeWindowSeconds
    How long after a 401 the same client's lines are kept.
.PARAMETER MaxLinesPerFile
    The most lines kept per file; counting goes on, keeping stops (truncated = true).
.PARAMETER MaxFiles
    The most files read, newest first.
.PARAMETER MaxBytes
    The most bytes of kept lines across all files, before compression.
.OUTPUTS
    System.String. One compact JSON envelope (schema iisfleet.collector/1).
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [string[]]$LogDirectory = @(),
    [string]$Since = '',
    [string]$Until = '',
    [int]$HandshakeWindowSeconds = 30,
    [int]$MaxLinesPerFile = 200000,
    [int]$MaxFiles = 200,
    [int]$MaxBytes = 50000000
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

$invariant = [System.Globalization.CultureInfo]::InvariantCulture
$nowUtc = [System.DateTime]::UtcNow
$sinceUtc = ConvertTo-UtcTime -Text $Since -Fallback $nowUtc.AddHours(-24)
$untilUtc = ConvertTo-UtcTime -Text $Until -Fallback $nowUtc
# W3C timestamps are UTC 'yyyy-MM-dd HH:mm:ss', so the window test is an ordinal string compare.
$sinceText = $sinceUtc.ToString('yyyy-MM-dd HH:mm:ss', $invariant)
$untilText = $untilUtc.ToString('yyyy-MM-dd HH:mm:ss', $invariant)
$handshakeWindow = [System.TimeSpan]::FromSeconds($HandshakeWindowSeconds)
$utcStyles = [System.Globalization.DateTimeStyles]::AssumeUniversal -bor [System.Globalization.DateTimeStyles]::AdjustToUniversal
$serverDefault = '%SystemDrive%\inetpub\logs\LogFiles'

$roots = New-Object -TypeName 'System.Collections.Generic.List[string]'
$explicitRoots = $LogDirectory.Count -gt 0
if ($explicitRoots) {
    foreach ($directory in $LogDirectory) {
        $roots.Add($directory)
    }
}
else {
    $appHostPath = Join-Path -Path $env:SystemRoot -ChildPath 'System32\inetsrv\config\applicationHost.config'
    $config = Read-IisConfigXml -Path $appHostPath
    if ($null -ne $config) {
        $siteDefault = $serverDefault
        $defaultLogFile = $config.SelectSingleNode('/configuration/system.applicationHost/sites/siteDefaults/logFile')
        if ($null -ne $defaultLogFile -and $defaultLogFile.GetAttribute('directory') -ne '') {
            $siteDefault = $defaultLogFile.GetAttribute('directory')
        }
        foreach ($site in $config.SelectNodes('/configuration/system.applicationHost/sites/site')) {
            $siteDirectory = $siteDefault
            $logFile = $site.SelectSingleNode('logFile')
            if ($null -ne $logFile -and $logFile.GetAttribute('directory') -ne '') {
                $siteDirectory = $logFile.GetAttribute('directory')
            }
            # String join, not Join-Path: Join-Path fails when the configured drive does not exist.
            $roots.Add($siteDirectory.TrimEnd('\') + '\W3SVC' + $site.GetAttribute('id'))
        }
        $roots.Add($siteDefault)
        $central = $config.SelectSingleNode('/configuration/system.applicationHost/log/centralW3CLogFile')
        if ($null -ne $central -and $central.GetAttribute('directory') -ne '') {
            $roots.Add($central.GetAttribute('directory'))
        }
    }
    $roots.Add($serverDefault)
}

$searched = New-Object -TypeName 'System.Collections.Generic.List[string]'
$searchedSet = New-Object -TypeName 'System.Collections.Generic.HashSet[string]' -ArgumentList ([System.StringComparer]::OrdinalIgnoreCase)
$candidates = New-Object -TypeName 'System.Collections.Generic.List[object]'
$fileSet = New-Object -TypeName 'System.Collections.Generic.HashSet[string]' -ArgumentList ([System.StringComparer]::OrdinalIgnoreCase)
foreach ($root in $roots) {
    $expanded = [System.Environment]::ExpandEnvironmentVariables($root).TrimEnd('\')
    if (-not $searchedSet.Add($expanded)) {
        continue
    }
    if (-not (Test-Path -LiteralPath $expanded -PathType Container)) {
        if ($explicitRoots) {
            Add-ProbeError -Probe 'log-directory' -Target $expanded -Category 'not-found' -Message 'Log directory does not exist.'
        }
        continue
    }
    $searched.Add($expanded)
    try {
        $folders = @(Get-Item -LiteralPath $expanded) + @(Get-ChildItem -LiteralPath $expanded -Directory -Filter 'W3SVC*')
        foreach ($folder in $folders) {
            foreach ($file in @(Get-ChildItem -LiteralPath $folder.FullName -File -Filter '*.log')) {
                if ($file.LastWriteTimeUtc -ge $sinceUtc -and $fileSet.Add($file.FullName)) {
                    $candidates.Add($file)
                }
            }
        }
    }
    catch {
        Add-ProbeError -Probe 'log-directory' -Target $expanded -ErrorRecord $_
    }
}

$selected = @($candidates | Sort-Object -Property LastWriteTimeUtc -Descending)
if ($selected.Count -gt $MaxFiles) {
    Add-ProbeError -Probe 'max-files' -Target '' -Category 'cap' -Message ('{0} log files are in the window; only the newest {1} (MaxFiles) were read.' -f $selected.Count, $MaxFiles)
    $selected = @($selected | Select-Object -First $MaxFiles)
}

$bytesLeft = [long]$MaxBytes
$files = New-Object -TypeName 'System.Collections.Generic.List[object]'
foreach ($file in $selected) {
    $siteId = $null
    if ($file.Directory.Name -match '^W3SVC(\d+)$') {
        $siteId = [int]$Matches[1]
    }
    $excerpt = New-Object -TypeName System.Text.StringBuilder
    $lineNumber = 0
    $linesTotal = 0
    $dataLines = 0
    $linesKept = 0
    $truncated = $false
    $dateIndex = 0
    $timeIndex = 1
    $statusIndex = -1
    $clientIndex = -1
    $agentIndex = -1
    # client (c-ip + User-Agent) -> time of its latest 401
    $recent = New-Object -TypeName 'System.Collections.Generic.Dictionary[string, datetime]'
    # Past this stamp every remembered 401 is older than the window: forget them all at once.
    $forgetAfter = ''
    $stream = $null
    try {
        $stream = [System.IO.File]::Open($file.FullName, [System.IO.FileMode]::Open, [System.IO.FileAccess]::Read, [System.IO.FileShare]::ReadWrite)
        $reader = New-Object -TypeName System.IO.StreamReader -ArgumentList $stream, ([System.Text.Encoding]::UTF8), $true
        while ($null -ne ($line = $reader.ReadLine())) {
            $lineNumber++
            if ($line.Length -eq 0) {
                continue
            }
            $keep = $false
            if ($line[0] -eq '#') {
                $keep = $true
                if ($line.StartsWith('#Fields:')) {
                    $names = $line.Substring(8).Trim().Split(' ')
                    $dateIndex = [System.Array]::IndexOf($names, 'date')
                    $timeIndex = [System.Array]::IndexOf($names, 'time')
                    $statusIndex = [System.Array]::IndexOf($names, 'sc-status')
                    $clientIndex = [System.Array]::IndexOf($names, 'c-ip')
                    $agentIndex = [System.Array]::IndexOf($names, 'cs(User-Agent)')
                }
            }
            else {
                $linesTotal++
                $fields = $null
                if ($dateIndex -eq 0 -and $timeIndex -eq 1 -and $line.Length -ge 19) {
                    $stamp = $line.Substring(0, 19)
                }
                elseif ($dateIndex -ge 0 -and $timeIndex -ge 0) {
                    $fields = $line.Split(' ')
                    $stamp = ''
                    if ($fields.Length -gt [System.Math]::Max($dateIndex, $timeIndex)) {
                        $stamp = $fields[$dateIndex] + ' ' + $fields[$timeIndex]
                    }
                }
                else {
                    $stamp = $sinceText
                }
                if ([string]::CompareOrdinal($stamp, $sinceText) -lt 0 -or [string]::CompareOrdinal($stamp, $untilText) -gt 0) {
                    continue
                }
                $dataLines++
                # Cheap test first: most lines are not 401s and are never split.
                $maybe401 = $line.Contains(' 401 ') -or $line.EndsWith(' 401')
                if ($recent.Count -gt 0 -and [string]::CompareOrdinal($stamp, $forgetAfter) -gt 0) {
                    $recent.Clear()
                }
                if (-not $maybe401 -and $recent.Count -eq 0) {
                    continue
                }
                if ($null -eq $fields) {
                    $fields = $line.Split(' ')
                }
                $client = ''
                if ($clientIndex -ge 0 -and $clientIndex -lt $fields.Length) {
                    $client = $fields[$clientIndex]
                }
                if ($agentIndex -ge 0 -and $agentIndex -lt $fields.Length) {
                    $client = $client + ' ' + $fields[$agentIndex]
                }
                $when = $sinceUtc
                [void][System.DateTime]::TryParseExact($stamp, 'yyyy-MM-dd HH:mm:ss', $invariant, $utcStyles, [ref]$when)
                if ($maybe401 -and $statusIndex -ge 0 -and $statusIndex -lt $fields.Length -and $fields[$statusIndex] -eq '401') {
                    $recent[$client] = $when
                    $forgetAfter = $when.Add($handshakeWindow).ToString('yyyy-MM-dd HH:mm:ss', $invariant)
                    $keep = $true
                }
                elseif ($recent.ContainsKey($client)) {
                    if ($when - $recent[$client] -le $handshakeWindow) {
                        $keep = $true
                    }
                    else {
                        [void]$recent.Remove($client)
                    }
                }
            }
            if ($keep -and -not $truncated) {
                $size = [System.Text.Encoding]::UTF8.GetByteCount($line) + 12
                if ($linesKept -ge $MaxLinesPerFile -or $size -gt $bytesLeft) {
                    # Keep counting so the request totals stay right; stop keeping lines.
                    $truncated = $true
                    Add-ProbeError -Probe 'excerpt-cap' -Target $file.FullName -Category 'cap' -Message ('Kept-line cap reached at line {0} (MaxLinesPerFile {1}, MaxBytes {2}).' -f $lineNumber, $MaxLinesPerFile, $MaxBytes)
                }
                else {
                    [void]$excerpt.Append($lineNumber).Append("`t").Append($line).Append("`n")
                    $linesKept++
                    $bytesLeft = $bytesLeft - $size
                }
            }
        }
        $bytes = [System.Text.Encoding]::UTF8.GetBytes($excerpt.ToString())
        $files.Add([ordered]@{
                path        = $file.FullName
                site_id     = $siteId
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
    directories = @($searched)
    files       = @($files)
}

$envelope = [ordered]@{
    schema    = 'iisfleet.collector/1'
    collector = 'Get-IisW3CLog'
    version   = 1
    host      = [System.Environment]::MachineName
    time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    data      = $data
    errors    = @($probeErrors)
}
ConvertTo-Json -InputObject $envelope -Depth 8 -Compress
