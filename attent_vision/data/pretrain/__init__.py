"""The pretraining data: the multi-modal folder layout, its model-ready views and crops, the embedded set."""
