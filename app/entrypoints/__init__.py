"""The entry points: the one list of domains, the web app, the command line, the worker."""
