"""Model training (needs the train extra for the training itself)."""
