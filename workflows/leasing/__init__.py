"""What the lease and pool workflows share that is not a workflow itself."""
