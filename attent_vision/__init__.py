"""attent-vision: AtteNT scored-subset pretraining of multi-modal masked autoencoders."""

__version__ = "0.1.0"
