"""Datasets: the pretraining folder layout (pseudo-labelled rgb/depth/semseg), ImageNet-S50, NYUv2 (and its
preparation command), the embedded synthetic generators, and the joint transforms.

Import from the submodules (``attent_vision.data.folder``, ``attent_vision.data.downstream``, ...); this file
stays empty so that importing one dataset never pulls in the others.
"""
