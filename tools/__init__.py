"""Project tools that read the code (not part of the running service)."""
