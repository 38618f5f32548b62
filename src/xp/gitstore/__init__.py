"""The git layer: find the repository, snapshot the workspace, write objects and refs."""
