"""Collections being assembled, and their frozen snapshots."""
