"""A small real-image pretraining dataset from the colour photos that ship inside the scikit-image wheel.

The embedded synthetic scenes are easy to score consistently; real photographs are not. This writes many random
square crops, at random scales and positions, of each of a few photos into the rgb-only folder layout the
pretraining loader reads (docs/datasets.md, "Bring your own images"):

    <root>/train/rgb/<photo>/<photo>_<i>.png      one class folder per photo
    <root>/val/rgb/<photo>/<photo>_<i>.png

Deterministic: the crops are a pure function of (seed, split), so two machines write the same files; the settings
are recorded in ``<root>/photos.json``, and writing the same settings again leaves the folder as it is. No download:
only photos that are part of the wheel itself are used (scikit-image is an optional dependency of the benchmarks
that use this: ``pip install scikit-image``).

    python benchmarks/photo_dataset.py /tmp/photos                        # 512 train + 64 val crops of 48 px
    python train.py data=folder data.root=/tmp/photos model=multimae_pico 'model.in_domains=[rgb]' \
        'model.out_domains=[rgb]'
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# skimage.data functions whose colour photo is inside the wheel (no pooch download), and how to take the RGB image
# out of what they return. Graphics (colorwheel, logo) and grey images are left out: these are photographs.
PHOTOS = {
    "astronaut": lambda d: d.astronaut(),
    "chelsea": lambda d: d.chelsea(),
    "coffee": lambda d: d.coffee(),
    "rocket": lambda d: d.rocket(),
    "hubble_deep_field": lambda d: d.hubble_deep_field(),
    "immunohistochemistry": lambda d: d.immunohistochemistry(),
    "retina": lambda d: d.retina(),
    "motorcycle": lambda d: d.stereo_motorcycle()[0],  # (left, right, disparity): the left view
}
CROP_SCALE = (0.15, 0.6)  # a crop's side as a share of the photo's short side: parts of a scene, not the whole
SPLIT_SEEDS = {"train": 0, "val": 1}  # the splits draw different crops of the same photos


class PhotoDatasetError(Exception):
    """Settings or a folder the photo dataset cannot be written with; the message says what to change."""


class MissingScikitImage(PhotoDatasetError):
    pass


def load_photos() -> dict[str, np.ndarray]:
    """name -> H x W x 3 uint8 photo. Raises MissingScikitImage (one line, what to install) without scikit-image."""
    try:
        from skimage import data
    except ImportError:
        raise MissingScikitImage("the photo dataset needs scikit-image (its photos ship in the wheel): "
                                 "pip install scikit-image") from None
    return {name: np.ascontiguousarray(take(data)[..., :3]) for name, take in PHOTOS.items()}


def random_crops(photo: np.ndarray, count: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` square crops of ``photo`` (H x W x 3), each side a random share (CROP_SCALE) of the short side at a
    random position, resized to ``size`` x ``size`` (bicubic after an anti-aliasing reduce)."""
    from PIL import Image

    h, w = photo.shape[:2]
    image = Image.fromarray(photo)
    crops = []
    for _ in range(count):
        side = max(size // 2, round(rng.uniform(*CROP_SCALE) * min(h, w)))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = image.crop((left, top, left + side, top + side))
        crops.append(np.asarray(crop.resize((size, size), Image.BICUBIC, reducing_gap=2.0)))
    return crops


def make_photo_dataset(root, train_count: int = 512, val_count: int = 64, size: int = 48, seed: int = 0) -> dict:
    """Write the dataset into ``root`` (see the module docstring); returns {split: images written}. The counts are
    shared among the photos as evenly as possible (the first photos get one more when they do not divide)."""
    from PIL import Image

    if size < 8 or train_count < 1 or val_count < 0:
        raise PhotoDatasetError(f"photo dataset: size >= 8, train count >= 1 and val count >= 0, got {size}, "
                                f"{train_count}, {val_count}")
    root = Path(root)
    settings = {"photos": list(PHOTOS), "train": train_count, "val": val_count, "size": size, "seed": seed,
                "crop_scale": list(CROP_SCALE)}
    record = root / "photos.json"
    if record.is_file() and json.loads(record.read_text()) == settings:
        return {"train": train_count, "val": val_count}  # written before with the same settings
    if root.is_dir() and any(root.iterdir()):
        raise PhotoDatasetError(f"{root} is not empty and holds no photo dataset of these settings; give an empty "
                                "or new folder")
    photos = load_photos()
    written = {}
    for split, count in (("train", train_count), ("val", val_count)):
        rng = np.random.default_rng([seed, SPLIT_SEEDS[split]])
        per_photo = [count // len(photos) + (i < count % len(photos)) for i in range(len(photos))]
        for (name, photo), n in zip(photos.items(), per_photo):
            folder = root / split / "rgb" / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, crop in enumerate(random_crops(photo, n, size, rng)):
                Image.fromarray(crop).save(folder / f"{name}_{i:04d}.png")
        written[split] = count
    record.write_text(json.dumps(settings, indent=2) + "\n")  # last: a folder cut short is not taken as complete
    return written


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="photo_dataset.py", description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path, help="folder to write (<root>/train/rgb/..., <root>/val/rgb/...)")
    p.add_argument("--train", type=int, default=512, help="training crops in all (default 512)")
    p.add_argument("--val", type=int, default=64, help="validation crops in all (default 64)")
    p.add_argument("--size", type=int, default=48, help="side of each crop in pixels (default 48)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        written = make_photo_dataset(args.root, args.train, args.val, args.size, args.seed)
    except PhotoDatasetError as e:
        sys.exit(f"photo_dataset.py: {e}")
    print(f"wrote {written['train']} training and {written['val']} validation crops of {len(PHOTOS)} photos "
          f"into {args.root}")


if __name__ == "__main__":
    main()
