"""Datasets.

    pretrain/     the pretraining folder layout (pseudo-labelled rgb/depth/semseg), its model-ready views and joint
                  crops, and the embedded synthetic pretraining set
    downstream/   ImageNet-S50, NYUv2 (and its preparation command), their embedded stand-ins, the fine-tuning
                  transforms and ``downstream_datasets`` (which dataset serves which task)
    scenes.py     the procedural scene renderer both embedded sets draw from
    cache.py, image_io.py, normalize.py, roots.py, skipping.py   what both share

Import from the submodules; this file stays empty so that importing one dataset never pulls in the others.
"""
