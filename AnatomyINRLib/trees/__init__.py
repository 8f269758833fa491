"""Tree synthesis (TrIND): per-tree occupancy INRs and weight-space diffusion over their weights."""
