# collector-id: _ssh_bootstrap/2
# iisfleet SSH bootstrap, sent as -EncodedCommand: keep it small (cmd.exe caps a command line at 8191
# characters; base64 of UTF-16LE is about 2.7 times the text). One process serves one SSH connection.
# Each stdin line is a request {"script","parameters","end"}: the script runs in a child scope with
# the parameters splatted (data, never script text), each output object goes out as one UTF-8 line,
# then the line <end>{"failed":bool,"errors":[...]}. Types loaded by Add-Type stay for later requests,
# so the C# core is compiled once per connection. Output goes through our own UTF-8 writer and
# [Console]::OutputEncoding is never set (it throws without a console, and native tools such as
# setspn would then be decoded with the wrong code page).
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version Latest
$utf8 = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false
$reader = New-Object -TypeName System.IO.StreamReader -ArgumentList ([Console]::OpenStandardInput()), $utf8
$writer = New-Object -TypeName System.IO.StreamWriter -ArgumentList ([Console]::OpenStandardOutput()), $utf8
$writer.NewLine = "`n"
while ($null -ne ($line = $reader.ReadLine())) {
    if ($line.Trim() -eq '') {
        continue
    }
    $request = ConvertFrom-Json -InputObject $line
    # No ConvertFrom-Json -AsHashtable before PowerShell 6: copy the properties for splatting.
    $parameters = @{}
    $given = $request.PSObject.Properties['parameters']
    if ($null -ne $given -and $null -ne $given.Value) {
        foreach ($property in $given.Value.PSObject.Properties) {
            $parameters[$property.Name] = $property.Value
        }
    }
    $status = @{ failed = $false; errors = @() }
    try {
        $collector = [scriptblock]::Create([string]$request.script)
        & $collector @parameters 2>&1 | ForEach-Object {
            if ($_ -is [System.Management.Automation.ErrorRecord]) {
                $status.errors += [string]$_
            }
            else {
                $writer.WriteLine([string]$_)
            }
        }
    }
    catch {
        $status.failed = $true
        $status.errors += [string]$_
    }
    $writer.WriteLine([string]$request.end + (ConvertTo-Json -InputObject $status -Compress))
    $writer.Flush()
}
