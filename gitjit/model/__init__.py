"""The format's vocabulary: names, durations and times, policy.toml, request and decision records, size limits."""
