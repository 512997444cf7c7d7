"""Simulated WinRM service: HTTP(S) listeners, Negotiate/NTLM/Basic auth, WS-Management, PSRP, WinRS."""
