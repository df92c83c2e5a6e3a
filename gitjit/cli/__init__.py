"""The Typer app, its options and rendering (tables, live display, JSON)."""
