# collector-id: Get-GoodExample/2

<#
.SYNOPSIS
    A minimal collector that passes every static check (the baseline for the bad snippets).
.PARAMETER MaxItems
    How many items.
.PARAMETER Name
    A name.
#>
[CmdletBinding()]
param(
    [int]$MaxItems = 5,
    [string]$Name = ''
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$items = @(Join-Path -Path $env:SystemRoot -ChildPath $Name)
$data = [ordered]@{ count = [System.Math]::Min($items.Count, $MaxItems); name = $Name }
$envelope = [ordered]@{
    schema    = 'iisfleet.collector/1'
    collector = 'Get-GoodExample'
    version   = 2
    data      = $data
    errors    = @()
}
ConvertTo-Json -InputObject $envelope -Depth 4 -Compress
