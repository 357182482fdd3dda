"""The command line: `main` parses and dispatches, `commands` holds the one-shot commands,
`exits` the exit codes both share."""
