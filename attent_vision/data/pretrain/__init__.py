"""The pretraining data: the dataset kinds (kinds/, config key ``data.name``: one file each), the interface a kind's
split offers (source.py), the multi-modal folder layout (folder.py), its model-ready views and crops (views.py,
transforms.py), the decoded-sample cache (memory_cache.py) and the embedded synthetic set (embedded.py)."""
