# collector-id: _core_loader/2
# iisfleet core loader. A transport runs it once per session (WinRM runspace pool, SSH connection)
# before the first collector that calls the C# core. The core's source arrives as the parameter
# $CompressedSource: its UTF-8 bytes gzip-compressed, then base64 (about a fifth of the plain text on
# the wire; data, never spliced into script text). It is decompressed with GZipStream (.NET Framework
# 2.0+, System.dll) and compiled with Add-Type only when the type
# IisFleet.Target.Core with the same Version is not loaded yet, so it is compiled once per session.
# Over WinRM the collectors' wrappers arrive the same way ($CompressedFunctions: one global function per
# wrapper, toolkit.collectors.session_functions_text); they are defined here, once per session, and each
# step is then a call of its function with its parameters instead of the wrapper's text. $Step (WinRM):
# the steps to run once the functions are defined, in the same pipeline, as Invoke-IisFleetStepBatch runs them.
# Add-Type's compiler writes temporary files in %TEMP% and deletes them (the one documented
# exception to "nothing is written"); nothing else is written and no file is left behind.
# Output: one compact JSON object (schema iisfleet.core-loader/1). Only constructs that work in
# ConstrainedLanguage run before the language-mode test, so that mode is reported, not crashed on.
[CmdletBinding()]
param(
    [string]$CompressedSource = '',
    [string]$Version = '',
    [string[]]$ReferencedAssemblies = @(),
    [string]$CompressedFunctions = '',
    [object[]]$Step = @()
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$status = @{
    schema        = 'iisfleet.core-loader/1'
    version       = $Version
    loaded        = $false
    compiled      = $false
    compile_ms    = 0
    ps_version    = [string]$PSVersionTable.PSVersion
    language_mode = [string]$ExecutionContext.SessionState.LanguageMode
    functions     = $false
    error         = $null
}

function Read-CompressedText {
    # base64 of gzip of UTF-8 text, as toolkit.collectors.compress_core_text writes it
    param([string]$Text)
    $compressed = [System.Convert]::FromBase64String($Text)
    $memory = New-Object -TypeName System.IO.MemoryStream -ArgumentList @(, $compressed)
    $gzip = New-Object -TypeName System.IO.Compression.GZipStream -ArgumentList $memory, ([System.IO.Compression.CompressionMode]::Decompress)
    $reader = New-Object -TypeName System.IO.StreamReader -ArgumentList $gzip, ([System.Text.Encoding]::UTF8)
    try {
        return $reader.ReadToEnd()
    }
    finally {
        $reader.Dispose()
    }
}
if ($status.language_mode -ne 'FullLanguage') {
    $status.error = @{
        category = 'environment'
        message  = 'PowerShell runs in ' + $status.language_mode + ' mode on this host, where Add-Type is not allowed: the collectors cannot compile their C# core. Connect to an endpoint in FullLanguage mode.'
    }
}
elseif ($PSVersionTable.PSVersion.Major -lt 4) {
    $status.error = @{
        category = 'environment'
        message  = 'PowerShell ' + $status.ps_version + ' is too old: iisfleet needs Windows PowerShell 4.0 or later.'
    }
}
else {
    $loadedType = 'IisFleet.Target.Core' -as [type]
    if ($null -ne $loadedType) {
        $loadedVersion = [string]$loadedType.GetField('Version').GetValue($null)
        if ($loadedVersion -eq $Version) {
            $status.loaded = $true
        }
        else {
            $status.error = @{
                category = 'environment'
                message  = 'Another version (' + $loadedVersion + ') of the iisfleet core is already loaded in this session; open a new session.'
            }
        }
    }
    else {
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        try {
            $source = Read-CompressedText -Text $CompressedSource
            Add-Type -TypeDefinition $source -Language CSharp -ReferencedAssemblies $ReferencedAssemblies
            $status.loaded = $true
            $status.compiled = $true
        }
        catch {
            $status.error = @{
                category = 'environment'
                message  = 'The iisfleet core could not be unpacked or compiled (Add-Type) on this host: ' + $_.Exception.Message
            }
        }
        $status.compile_ms = [int]$watch.ElapsedMilliseconds
    }
    if ($CompressedFunctions -ne '') {
        # Defined even when the core failed to compile: each wrapper's own probe then reports why.
        try {
            $definitions = Read-CompressedText -Text $CompressedFunctions
            $definingBlock = [scriptblock]::Create($definitions)
            . $definingBlock
            $status.functions = $true
        }
        catch {
            $status.functions = $false
        }
    }
}
ConvertTo-Json -InputObject $status -Depth 3 -Compress
if ($status.functions -and $Step.Count -gt 0) {
    # The session's first step rides with the loader (one pipeline fewer per host): its line follows the
    # status line, as Invoke-IisFleetStepBatch writes it (docs/protocol/step-batch.md).
    $batchFunction = 'Invoke-IisFleetStepBatch'
    & $batchFunction -Step $Step
}
