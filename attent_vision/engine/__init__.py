"""Training engines: pretraining and fine-tuning loops and what they share (runtime, checkpoints, logging)."""
