"""The content-addressed cache, manifests, gc, artifact remotes and transfers."""
