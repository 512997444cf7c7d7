# collector-id: _ssh_bootstrap/1
# iisfleet SSH bootstrap. Sent as -EncodedCommand, so it must stay tiny: cmd.exe caps a command
# line at 8191 characters and base64 of UTF-16LE inflates the text about 2.7 times.
# Reads ONE JSON document {"script": "<collector text>", "parameters": {...}} from stdin, runs the
# script with the parameters splatted and writes each output object to stdout as UTF-8, one per line.
# Parameters travel as data and are never spliced into script text. An uncaught terminating error
# leaves powershell.exe with exit code 1 and the error as CLIXML on stderr.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version Latest
$utf8 = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false
[Console]::OutputEncoding = $utf8
# Read stdin as UTF-8 bytes ourselves: the console input code page is OEM by default.
$stdin = New-Object -TypeName System.IO.StreamReader -ArgumentList ([Console]::OpenStandardInput()), $utf8
$request = $stdin.ReadToEnd() | ConvertFrom-Json
# Windows PowerShell 5.1 has no ConvertFrom-Json -AsHashtable: copy the properties for splatting.
# StrictMode refuses a missing property, so look "parameters" up instead of dotting into it.
$parameters = @{}
$given = $request.PSObject.Properties['parameters']
if ($null -ne $given -and $null -ne $given.Value) {
    foreach ($property in $given.Value.PSObject.Properties) {
        $parameters[$property.Name] = $property.Value
    }
}
$collector = [scriptblock]::Create([string]$request.script)
$results = & $collector @parameters
foreach ($result in $results) {
    [Console]::Out.WriteLine([string]$result)
}
[Console]::Out.Flush()
