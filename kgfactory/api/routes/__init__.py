"""HTTP routes, one file per concern."""
