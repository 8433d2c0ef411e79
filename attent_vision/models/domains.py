"""The modalities a MultiMAE can read and predict, and what each needs from adapters and losses."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Domain:
    """Static facts about one modality.

    channels: input channels (rgb 3, depth 1) or, for semseg, the number of classes (its output channels).
    stride_level: resolution divisor of the modality's tensors (semseg is stored at 1/4 of the image).
    is_input: whether it can be an input modality (``norm_rgb`` is a prediction target only).
    mask_from: the input modality whose mask decides which pixels this output is scored on.
    """

    name: str
    channels: int
    stride_level: int = 1
    is_input: bool = True
    mask_from: str | None = None

    @property
    def mask_source(self) -> str:
        return self.mask_from or self.name


DOMAINS = {
    "rgb": Domain("rgb", channels=3),
    "depth": Domain("depth", channels=1),
    "semseg": Domain("semseg", channels=133, stride_level=4),
    "norm_rgb": Domain("norm_rgb", channels=3, is_input=False, mask_from="rgb"),
}

FINETUNE_INPUT_DOMAINS = ("rgb", "depth")  # MultiViT inputs (semseg labels are targets there, never inputs)


def check_domains(in_domains: list[str], out_domains: list[str]) -> None:
    """Raise ValueError naming the offending modality when a list is empty or holds an unknown modality."""
    if not in_domains:
        raise ValueError("in_domains is empty: give at least one input modality, e.g. [rgb]")
    if not out_domains:
        raise ValueError("out_domains is empty: give at least one output modality, e.g. [rgb]")
    for d in in_domains:
        if d not in DOMAINS or not DOMAINS[d].is_input:
            inputs = [n for n, dom in DOMAINS.items() if dom.is_input]
            raise ValueError(f"unknown input modality '{d}'; choose from {inputs}")
    for d in out_domains:
        if d not in DOMAINS:
            raise ValueError(f"unknown output modality '{d}'; choose from {list(DOMAINS)}")


def data_modalities(in_domains: list[str], out_domains: list[str]) -> list[str]:
    """Modalities a dataset must provide: every input and every output's target (norm_rgb is computed from rgb)."""
    needed = list(in_domains) + [DOMAINS[d].mask_source for d in out_domains]
    return [d for d in DOMAINS if d in needed]
