"""The simulated IIS fleet: protocol-real WinRM (HTTP/WS-Management/PSRP) and SSH servers on loopback.

Used by tests, benchmarks and ``iisfleet demo``. The product's own code path never imports it.
"""
