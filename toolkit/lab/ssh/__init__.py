"""Simulated Windows OpenSSH (paramiko server API) and a stand-in ``powershell`` for a real sshd."""
