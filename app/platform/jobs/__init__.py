"""Background jobs: the registry of job kinds, their lifecycle, chunked jobs, dispatch and recovery."""
