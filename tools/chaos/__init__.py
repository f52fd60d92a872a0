"""The chaos run (``make chaos``): the platform under load while its processes and
dependencies fail, and the figures that show nothing was lost, duplicated or leaked."""
