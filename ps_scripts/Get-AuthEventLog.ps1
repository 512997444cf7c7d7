# collector-id: Get-AuthEventLog/1

<#
.SYNOPSIS
    Returns the authentication-related Windows events in a time window, as fields rather than text:
    Security 4625, 1102 and 1104, System Kerberos event 4, counts of 4624 logon types 3 and 8, the
    size and state of the Security and System logs, and the CrashOnAuditFail value.
.DESCRIPTION
    Read-only. Events are read with Get-WinEvent and XPath filters; each event's EventData (or
    UserData) name/value pairs are returned, never the rendered message. Reading the Security log
    needs administrator rights or membership of Event Log Readers; a refusal is reported in errors[]
    and the rest still arrives. CrashOnAuditFail is read from HKLM\SYSTEM\CurrentControlSet\Control\Lsa.
.PARAMETER Since
    Start of the window, ISO 8601 UTC. Empty: 24 hours before now.
.PARAMETER Until
    End of the window, ISO 8601 UTC. Empty: now.
.PARAMETER MaxEvents
    The most events returned per query (newest first).
.PARAMETER MaxLogonCount
    The most 4624 events counted per logon type; a count that reaches it is a lower bound.
.OUTPUTS
    System.String. One compact JSON envelope (schema iisfleet.collector/1).
#>
[CmdletBinding()]
[OutputType([string])]
param(
    [string]$Since = '',
    [string]$Until = '',
    [int]$MaxEvents = 500,
    [int]$MaxLogonCount = 20000
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
# Both bounds are formatted from parsed dates, so no caller text reaches the XPath.
$timeFilter = "TimeCreated[@SystemTime>='{0}' and @SystemTime<='{1}']" -f $sinceUtc.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", $invariant), $untilUtc.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", $invariant)

function Read-EventQuery {
    # Get-WinEvent that treats "no events" as an empty answer rather than an error.
    param([string]$Log, [string]$XPath, [int]$Limit, [string]$Probe)
    try {
        return @(Get-WinEvent -LogName $Log -FilterXPath $XPath -MaxEvents $Limit -ErrorAction Stop)
    }
    catch {
        if ($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') {
            Add-ProbeError -Probe $Probe -Target $Log -ErrorRecord $_
        }
        return @()
    }
}

function ConvertTo-EventRecord {
    # The event's named fields as data; the rendered message text is never used.
    param([object]$LogEvent, [string]$Log)
    $document = New-Object -TypeName System.Xml.XmlDocument
    $document.XmlResolver = $null
    $document.LoadXml($LogEvent.ToXml())
    $fields = [ordered]@{}
    $index = 0
    foreach ($node in $document.SelectNodes("/*[local-name()='Event']/*[local-name()='EventData']/*[local-name()='Data']")) {
        $name = $node.GetAttribute('Name')
        if ($name -eq '') {
            $name = 'Data' + $index
        }
        $fields[$name] = $node.InnerText
        $index++
    }
    foreach ($node in $document.SelectNodes("/*[local-name()='Event']/*[local-name()='UserData']/*/*")) {
        $fields[$node.LocalName] = $node.InnerText
    }
    return [ordered]@{
        log       = $Log
        id        = $LogEvent.Id
        provider  = $LogEvent.ProviderName
        time_utc  = $LogEvent.TimeCreated.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", $invariant)
        record_id = $LogEvent.RecordId
        machine   = $LogEvent.MachineName
        data      = $fields
    }
}

$queries = @(
    [ordered]@{ log = 'Security'; probe = 'security-events'; xpath = "*[System[(EventID=4625 or EventID=1102 or EventID=1104) and $timeFilter]]" },
    [ordered]@{ log = 'System'; probe = 'kerberos-events'; xpath = "*[System[Provider[@Name='Microsoft-Windows-Security-Kerberos' or @Name='Kerberos'] and EventID=4 and $timeFilter]]" }
)
$events = New-Object -TypeName 'System.Collections.Generic.List[object]'
foreach ($query in $queries) {
    $found = @(Read-EventQuery -Log $query.log -XPath $query.xpath -Limit $MaxEvents -Probe $query.probe)
    if ($found.Count -ge $MaxEvents) {
        Add-ProbeError -Probe $query.probe -Target $query.log -Category 'cap' -Message ('MaxEvents ({0}) reached; older events in the window were not read.' -f $MaxEvents)
    }
    foreach ($logEvent in $found) {
        try {
            $events.Add((ConvertTo-EventRecord -LogEvent $logEvent -Log $query.log))
        }
        catch {
            Add-ProbeError -Probe $query.probe -Target $query.log -ErrorRecord $_
        }
    }
}

$logonCounts = [ordered]@{ '4624_type3' = 0; '4624_type8' = 0 }
foreach ($logonType in @(3, 8)) {
    $xpath = "*[System[EventID=4624 and $timeFilter] and EventData[Data[@Name='LogonType']='$logonType']]"
    $count = 0
    try {
        $count = (Get-WinEvent -LogName 'Security' -FilterXPath $xpath -MaxEvents $MaxLogonCount -ErrorAction Stop | Measure-Object).Count
    }
    catch {
        if ($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') {
            Add-ProbeError -Probe 'logon-counts' -Target 'Security' -ErrorRecord $_
        }
    }
    if ($count -ge $MaxLogonCount) {
        Add-ProbeError -Probe 'logon-counts' -Target 'Security' -Category 'cap' -Message ('4624 type {0} count stopped at MaxLogonCount ({1}).' -f $logonType, $MaxLogonCount)
    }
    $logonCounts['4624_type' + $logonType] = $count
}

$logs = New-Object -TypeName 'System.Collections.Generic.List[object]'
foreach ($logName in @('Security', 'System')) {
    try {
        $state = Get-WinEvent -ListLog $logName -ErrorAction Stop
        $logs.Add([ordered]@{
                name            = $state.LogName
                max_size_bytes  = $state.MaximumSizeInBytes
                file_size_bytes = $state.FileSize
                record_count    = $state.RecordCount
                is_full         = [bool]$state.IsLogFull
                retention       = [string]$state.LogMode
            })
    }
    catch {
        Add-ProbeError -Probe 'log-state' -Target $logName -ErrorRecord $_
    }
}

$crashOnAuditFail = $null
try {
    $lsa = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\Lsa'
    $value = $lsa.PSObject.Properties['CrashOnAuditFail']
    if ($null -ne $value) {
        $crashOnAuditFail = [int]$value.Value
    }
}
catch {
    Add-ProbeError -Probe 'crash-on-audit-fail' -Target 'HKLM:\SYSTEM\CurrentControlSet\Control\Lsa' -ErrorRecord $_
}

$data = [ordered]@{
    events              = @($events)
    logon_counts        = $logonCounts
    logs                = @($logs)
    crash_on_audit_fail = $crashOnAuditFail
}

$envelope = [ordered]@{
    schema    = 'iisfleet.collector/1'
    collector = 'Get-AuthEventLog'
    version   = 1
    host      = [System.Environment]::MachineName
    time_utc  = [System.DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    data      = $data
    errors    = @($probeErrors)
}
ConvertTo-Json -InputObject $envelope -Depth 8 -Compress
