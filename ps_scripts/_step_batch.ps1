# collector-id: _step_batch/1
# iisfleet step batch. Over WinRM the core loader defines it as the session function
# Invoke-IisFleetStepBatch, beside the collectors' own session functions
# (toolkit.collectors.session_functions_text). The transport then runs several steps of a host in one
# pipeline instead of one pipeline each: every pipeline costs about 10 KB of WS-Management traffic,
# more than most collectors' output (issue 17). Protocol: docs/protocol/step-batch.md.
# $Step is a list of @{ Name = <session function of a bundled collector>; Parameters = @{...} }, data
# sent by the controller, never script text. Each step, in order, writes one line per output object as
# the collector writes it, then one line when it ends:
#   #iisfleet-batch/1 out <index> <objects>
#   #iisfleet-batch/1 end <index> <ok|failed> <milliseconds> [<error> ...]
# <objects> is base64 of gzip of the text (UTF-8) of one or more output objects joined by LF, each <error>
# base64 of one error message's UTF-8. Objects are held until 64 KB of them or 5 s have gathered (one
# compressed line instead of many small ones), so a step stopped at its timeout keeps the parts it
# finished but the last few seconds' (a collector that streams, docs/contracts.md 1.4). The next step begins as the end line is written; the
# controller times each step against its own timeout from there and stops the pipeline at it.
# Non-terminating errors are caught as the SSH bootstrap catches them; a terminating error ends that step
# only ("failed"), and the next step runs.
[CmdletBinding()]
param(
    [object[]]$Step = @()
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

function ConvertTo-PackedText {
    # base64 of gzip of UTF-8 text: the reverse of the loader's Read-CompressedText
    param([string]$Text)
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($Text)
    $memory = New-Object -TypeName System.IO.MemoryStream
    $gzip = New-Object -TypeName System.IO.Compression.GZipStream -ArgumentList $memory, ([System.IO.Compression.CompressionMode]::Compress)
    try {
        $gzip.Write($bytes, 0, $bytes.Length)
    }
    finally {
        $gzip.Dispose()
    }
    # MemoryStream.ToArray still answers once the stream is closed
    return [System.Convert]::ToBase64String($memory.ToArray())
}

$index = 0
foreach ($call in $Step) {
    $name = [string]$call['Name']
    $arguments = $call['Parameters']
    if ($null -eq $arguments) {
        $arguments = @{}
    }
    $problems = New-Object -TypeName 'System.Collections.Generic.List[string]'
    # Reference types, so the pipeline's script block updates them whatever scope it runs in.
    $held = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $heldChars = @{ count = 0 }
    $sinceSent = [System.Diagnostics.Stopwatch]::StartNew()
    $outcome = 'ok'
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    try {
        if ($name -notmatch '^\w+-IisFleetCollector\w+$') {
            throw ('not an iisfleet collector function: ' + $name)
        }
        & $name @arguments 2>&1 | ForEach-Object {
            if ($_ -is [System.Management.Automation.ErrorRecord]) {
                $problems.Add([string]$_)
            }
            else {
                $text = [string]$_
                $held.Add($text)
                $heldChars.count = $heldChars.count + $text.Length
                if ($heldChars.count -ge 65536 -or $sinceSent.Elapsed.TotalSeconds -ge 5) {
                    '#iisfleet-batch/1 out ' + $index + ' ' + (ConvertTo-PackedText -Text ($held -join "`n"))
                    $held.Clear()
                    $heldChars.count = 0
                    $sinceSent.Restart()
                }
            }
        }
    }
    catch {
        $outcome = 'failed'
        $problems.Add([string]$_)
    }
    if ($held.Count -gt 0) {
        '#iisfleet-batch/1 out ' + $index + ' ' + (ConvertTo-PackedText -Text ($held -join "`n"))
    }
    $fields = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $fields.Add('#iisfleet-batch/1 end ' + $index + ' ' + $outcome + ' ' + [string]$watch.ElapsedMilliseconds)
    foreach ($problem in $problems) {
        $fields.Add([System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($problem)))
    }
    $fields -join ' '
    $index = $index + 1
}
