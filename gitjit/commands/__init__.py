"""One module per command flow (write, run, audit), returning values; no terminal here."""
