"""git plumbing: reading objects and refs through git itself, and writing the approvals branch."""
