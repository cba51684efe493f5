"""The command-line kit: console output, progress bars, errors, and running jobs from a command."""
