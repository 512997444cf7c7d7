# collector-id: _step_batch/1
# iisfleet step batch. Over WinRM the core loader defines it as the session function
# Invoke-IisFleetStepBatch, beside the collectors' own session functions
# (toolkit.collectors.session_functions_text). The transport then runs several steps of a host in one
# pipeline instead of one pipeline each: every pipeline costs about 10 KB of WS-Management traffic,
# more than most collectors' output (issue 17). Protocol: docs/protocol/step-batch.md.
# $Step is a list of @{ Name = <session function of a bundled collector>; Parameters = @{...} }, data
# sent by the controller, never script text. Each step, in order, writes one line per output object as
# the collector writes it, then one line when it ends:
#   #iisfleet-batch/1 out <index> <object>
#   #iisfleet-batch/1 end <index> <ok|failed> <milliseconds> [<error> ...]
# <object> is base64 of gzip of the object's text (UTF-8), each <error> base64 of one error message's
# UTF-8. Objects leave as they come, so a step stopped at its timeout keeps the parts it finished (a
# collector that streams, docs/contracts.md 1.4). The next step begins as the end line is written; the
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
                '#iisfleet-batch/1 out ' + $index + ' ' + (ConvertTo-PackedText -Text ([string]$_))
            }
        }
    }
    catch {
        $outcome = 'failed'
        $problems.Add([string]$_)
    }
    $fields = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $fields.Add('#iisfleet-batch/1 end ' + $index + ' ' + $outcome + ' ' + [string]$watch.ElapsedMilliseconds)
    foreach ($problem in $problems) {
        $fields.Add([System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($problem)))
    }
    $fields -join ' '
    $index = $index + 1
}
