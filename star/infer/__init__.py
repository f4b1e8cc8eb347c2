"""Inference: spots by sliding window + NMS (spots.py), captions on the spots in the official format (captions.py)."""
