"""The rules: GnuPG signatures, the trusted view of the approvals branch, verdicts."""
