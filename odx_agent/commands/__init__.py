"""One module per operator command; the CLI parses arguments and calls into these."""
