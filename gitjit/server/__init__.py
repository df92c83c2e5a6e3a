"""Server side: the pre-receive check, the reference-transaction tickets, hook install/check/uninstall, gitolite."""
