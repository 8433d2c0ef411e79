"""Procedural multi-modal scenes: the embedded default dataset.

Each scene is a room corner seen by a camera: a back wall, a floor plane receding to the horizon, and several
objects of K shape classes standing on the floor. Depth, labels and colour are rendered from one scene
description, so they agree with each other:

- depth: the floor's depth grows towards the horizon, the wall is far, objects take the floor depth at their
  base (farther objects are smaller and higher up) with a little per-class relief; nearer objects occlude farther
  ones (painter's order);
- semseg: each object's class id (COCO-panoptic "thing" ids 0..K-1), wall and floor as two "stuff" ids;
- rgb: class-specific hue and texture, shaded darker and hazier with depth, plus a floor checkerboard whose
  frequency follows the perspective.

Difficulty varies by sample and is recorded in ``samples.csv``: the number of objects (clutter), a texture-noise
level (pixels no model can predict), and near-duplicates (a small jitter of an earlier scene). The image-level
class is the class with the most visible pixels.
"""

import csv
from dataclasses import asdict, dataclass

import numpy as np

CLASS_NAMES = ["disc", "square", "triangle", "ring", "diamond", "cross", "pillar", "slab", "ellipse", "star"]
FLOOR_ID = 110  # COCO-panoptic "stuff" ids: floor and wall
WALL_ID = 131
MAX_DEPTH = 10.0  # metres at which depth PNGs saturate (depth / MAX_DEPTH is stored as uint16 / 2**16)


@dataclass(frozen=True)
class SceneSpec:
    """Per-sample difficulty knobs, recorded in samples.csv."""

    num_objects: int
    noise: float
    duplicate_of: int  # -1 when the scene is original


def _class_colour(cls: int, rng: np.random.Generator) -> np.ndarray:
    hue = (cls / len(CLASS_NAMES) + rng.normal(0, 0.02)) % 1.0
    # HSV -> RGB with fixed saturation and value.
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    return 0.9 - 0.7 * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _shape_mask(cls: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test of class ``cls`` in object coordinates u (right), v (up), both in [-1, 1]."""
    r = np.sqrt(u**2 + v**2)
    name = CLASS_NAMES[cls]
    if name == "disc":
        return r <= 1.0
    if name == "square":
        return (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    if name == "triangle":
        return (v >= -0.9) & (v <= 0.9 - 1.8 * np.abs(u))
    if name == "ring":
        return (r <= 1.0) & (r >= 0.55)
    if name == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if name == "cross":
        return ((np.abs(u) <= 0.3) | (np.abs(v) <= 0.3)) & (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if name == "pillar":
        return (np.abs(u) <= 0.35) & (np.abs(v) <= 1.0)
    if name == "slab":
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 0.4)
    if name == "ellipse":
        return (u / 1.0) ** 2 + (v / 0.6) ** 2 <= 1.0
    angle = np.arctan2(v, u)
    return r <= 0.55 + 0.4 * np.cos(5 * angle)  # star


def _texture(cls: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Class-specific brightness pattern in [0.75, 1.05]: stripes, checks or plain, so texture identifies class."""
    kind = cls % 3
    if kind == 0:
        return 0.9 + 0.15 * np.sign(np.sin(6.0 * u))
    if kind == 1:
        return 0.9 + 0.15 * np.sign(np.sin(5.0 * u) * np.sin(5.0 * v))
    return np.full_like(u, 0.95)


def render_scene(size: int, rng: np.random.Generator, spec: SceneSpec, num_classes: int, layout=None):
    """Render one scene. Returns (rgb uint8 HxWx3, depth float32 HxW in metres, semseg uint8 HxW, label, layout).

    ``layout`` (the objects' parameters) lets near-duplicates re-render a jittered copy of an earlier scene.
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if layout is None:
        horizon = rng.uniform(0.3, 0.5) * size
        focal = size * rng.uniform(0.9, 1.3)
        cam_height = rng.uniform(1.2, 1.8)
        wall_colour = rng.uniform(0.35, 0.85, 3)
        floor_colour = rng.uniform(0.2, 0.7, 3)
        objects = []
        for _ in range(spec.num_objects):
            base = rng.uniform(horizon + 0.12 * size, size * 1.05)
            objects.append(
                dict(
                    cls=int(rng.integers(num_classes)),
                    x=rng.uniform(0.1, 0.9) * size,
                    base=base,
                    height=rng.uniform(0.6, 1.4),  # metres
                    colour=None,
                )
            )
        for o in objects:
            o["colour"] = _class_colour(o["cls"], rng)
        layout = dict(horizon=horizon, focal=focal, cam_height=cam_height, wall=wall_colour, floor=floor_colour,
                      wall_depth=rng.uniform(5.0, 8.0), wall_slant=rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.4),
                      objects=objects)
    else:  # near-duplicate: same scene, nudged
        layout = dict(layout)
        shift = rng.normal(0, 0.02 * size, 2)
        layout["objects"] = [dict(o, x=o["x"] + shift[0], base=o["base"] + 0.3 * shift[1]) for o in layout["objects"]]
    horizon, focal, cam_h = layout["horizon"], layout["focal"], layout["cam_height"]

    # Background: floor below the horizon (depth from the ground-plane projection), wall above.
    below = ys > horizon + 0.5
    floor_depth = cam_h * focal / np.maximum(ys - horizon, 0.5)
    # The back wall stands at an angle, so its depth varies across the image (a constant-depth wall would make
    # crops of wall alone degenerate for robust depth standardisation).
    wall_depth = layout["wall_depth"] * (1.0 + layout["wall_slant"] * (xs / size - 0.5))
    depth = np.where(below, np.minimum(floor_depth, wall_depth), wall_depth).astype(np.float32)
    semseg = np.where(below, FLOOR_ID, WALL_ID).astype(np.uint8)
    # Floor checkerboard in world coordinates: its frequency follows the perspective, a depth cue in rgb.
    world_x = (xs - size / 2) * depth / focal
    checks = np.sign(np.sin(3.0 * world_x) * np.sin(3.0 * depth)) * 0.12 + 1.0
    albedo = np.where(below[..., None], layout["floor"] * checks[..., None], layout["wall"])

    # Objects far to near, so nearer ones overwrite (occlude) farther ones.
    for o in sorted(layout["objects"], key=lambda o: -cam_h * focal / max(o["base"] - horizon, 1.0)):
        dist = cam_h * focal / max(o["base"] - horizon, 1.0)
        half_h = 0.5 * o["height"] * focal / dist
        half_w = half_h * 0.9
        cy = o["base"] - half_h
        u = (xs - o["x"]) / half_w
        v = (cy - ys) / half_h
        inside = _shape_mask(o["cls"], u, v)
        if not inside.any():
            continue
        relief = 0.15 * o["height"] * np.sqrt(np.clip(1 - u**2, 0, 1))  # rounded front surface
        obj_depth = dist - relief
        depth = np.where(inside, obj_depth, depth)
        semseg = np.where(inside, o["cls"], semseg).astype(np.uint8)
        shade = _texture(o["cls"], u, v) * (0.85 + 0.15 * v)  # lit from above
        albedo = np.where(inside[..., None], o["colour"] * shade[..., None], albedo)

    # Light falls off with distance and far things fade into haze.
    light = 1.0 / (1.0 + 0.08 * depth)
    haze = 1.0 - np.exp(-depth / 12.0)
    rgb = albedo * light[..., None] * (1 - haze[..., None]) + 0.75 * haze[..., None]
    rgb = rgb + rng.normal(0.0, spec.noise, rgb.shape)
    rgb8 = (np.clip(rgb, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)

    counts = np.bincount(semseg.ravel(), minlength=256)[:num_classes]
    label = int(counts.argmax()) if counts.max() > 0 else int(layout["objects"][0]["cls"]) if layout["objects"] else 0
    return rgb8, depth.astype(np.float32), semseg, label, layout


def scene_specs(count: int, rng: np.random.Generator, max_objects: int, max_noise: float, duplicate_fraction: float):
    """Draw the difficulty knobs of ``count`` scenes: clutter, noise, and which ones copy an earlier scene."""
    specs = []
    for i in range(count):
        dup = int(rng.integers(i)) if i > 0 and rng.random() < duplicate_fraction else -1
        # Noise level: most scenes clean, a tail of very noisy ones.
        noise = float(max_noise * rng.random() ** 3)
        specs.append(SceneSpec(num_objects=int(rng.integers(1, max_objects + 1)), noise=round(noise, 4),
                               duplicate_of=dup))
    return specs


def depth_to_png16(depth_m: np.ndarray) -> np.ndarray:
    """Metres -> uint16 with value / 2**16 = depth / MAX_DEPTH (the pseudo-label convention: relative depth)."""
    return np.clip(depth_m / MAX_DEPTH * 65536.0, 0, 65535).astype(np.uint16)


def write_manifest(path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def spec_row(split: str, cls_name: str, stem: str, label: int, spec: SceneSpec) -> dict:
    return dict(split=split, cls=cls_name, stem=stem, label=label, **asdict(spec))


def class_folder(cls: int) -> str:
    """Folder name of class ``cls`` (sorted order equals class order, like ImageNet wnids)."""
    return f"c{cls:02d}_{CLASS_NAMES[cls]}"


def stem_for(split: str, i: int) -> str:
    return f"{split}_{i:06d}"
