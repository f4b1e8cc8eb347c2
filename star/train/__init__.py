"""Training: the Batch contract (batch.py), lazy HDF5 datasets (datasets.py), the resumable loop (loop.py) and the
`star spotting-train` / `star captioning-train` stages (stage.py)."""
