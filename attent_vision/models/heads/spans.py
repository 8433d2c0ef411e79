"""Where each input modality's tokens sit in the encoder's output sequence (the global tokens come last)."""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TokenSpans:
    """``tasks``: modality -> (start, end, (rows, cols) of its token grid); ``image_hw``: full-resolution (H, W)."""

    tasks: dict[str, tuple[int, int, tuple[int, int]]]
    image_hw: tuple[int, int]

    def grid(self, task: str) -> tuple[int, int]:
        return self.tasks[task][2]

    def gather(self, tokens: torch.Tensor, main_tasks: list[str]) -> torch.Tensor:
        """tokens B x N x D -> the main tasks' tokens concatenated along channels, B x N_task x (D * len(main_tasks)).

        Only the patch tokens of ``main_tasks`` are kept (global tokens and other modalities are dropped), as the
        release's dense heads do. All main tasks must share one grid.
        """
        missing = [t for t in main_tasks if t not in self.tasks]
        if missing:
            raise ValueError(f"the head reads tokens of {missing}, which are not model inputs ({list(self.tasks)})")
        parts = [tokens[:, self.tasks[t][0] : self.tasks[t][1]] for t in main_tasks]
        return torch.cat(parts, dim=-1)
