"""The job of attent-pseudolabel (its Hydra entry point is attent_vision/pseudolabel.py, beside train.py and
finetune.py): a folder of images -> depth and semantic-segmentation pseudo-labels in the pretraining layout
(docs/datasets.md), made with Hugging Face transformers models (the ``pseudolabel`` extra). Docs: docs/pseudolabel.md.

    job.py        one invocation: list, skip what is done, label this rank's batches, manifest and summary
    inputs.py     the images to label, their split, and batches independent of the number of ranks
    decoding.py   images decoded as the pretraining loader decodes them, resized in worker processes
    labellers.py  the depth and segmentation models and their processors (one-line errors when they cannot load)
    encoding.py   predictions -> 16-bit relative depth and 8-bit class ids
    outputs.py    output paths, what is done, atomic writes (rgb last)
    manifest.py   pseudolabel_manifest.json: how the dataset was made, and a refusal to mix two models' labels
"""
