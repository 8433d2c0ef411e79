"""``data=synthetic``, the default: procedural rgb/depth/semseg scenes, generated once into the data cache in the
real pretraining layout (../embedded.py) and read back like a folder."""

from pathlib import Path

from .base import PRETRAIN_DATASETS, PretrainDataset


@PRETRAIN_DATASETS.register()
class SyntheticDataset(PretrainDataset):
    name = "synthetic"
    description = "the embedded procedural scenes (data.synthetic.*), generated into data.cache_dir on first use"
    takes_root = False
    # The synthetic data is generated, never read from a folder: a data.root given with it is a mistake either way.
    unexpected_root = ("the embedded synthetic data (data=synthetic, the default) is generated, not read from a "
                       "folder; to train on your data add data=folder, or to choose where the synthetic data is "
                       "cached set data.cache_dir=... (or $ATTENT_VISION_CACHE)")

    def root(self, cfg) -> Path:
        """The cache folder for ``data.synthetic`` (stored side resolved from ``model.image_size``), generated first
        if it is not there (in ``data.cache_dir``, default $ATTENT_VISION_CACHE)."""
        from ..embedded import SyntheticSettings, ensure_synthetic_dataset

        d = cfg.data
        settings = SyntheticSettings(**{k: d.synthetic[k] for k in d.synthetic}).for_model(cfg.model.image_size)
        return ensure_synthetic_dataset(settings, d.cache_dir)
