"""What verification keeps between runs under $GIT_DIR/gitjit: the snapshot, signature verdicts, the files themselves."""
