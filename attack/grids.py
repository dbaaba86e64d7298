"""PNG grids of originals and reconstructions (matplotlib, no display needed)."""

from pathlib import Path

import numpy as np


def save_grid(path, rows: list[tuple[str, np.ndarray]], title: str = "") -> Path:
    """One labelled row per (label, images (K, H, W, 1)) pair; ink is drawn black on white."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.9, len(rows) * 1.0 + 0.4),
                             squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c, ..., 0], cmap="gray_r", vmin=0.0, vmax=1.0)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def first_and_extremes(folder, prefix: str, originals: np.ndarray, recons: np.ndarray,
                       mse: np.ndarray, k: int = 8) -> list[str]:
    """Write <prefix>-first16.png and <prefix>-best-worst.png; return their file names."""
    folder = Path(folder)
    first = f"{prefix}-first16.png"
    save_grid(folder / first, [("original", originals[:16]), ("reconstructed", recons[:16])],
              f"{prefix}: first {min(16, len(originals))} images")
    order = np.argsort(mse, kind="stable")
    best, worst = order[:k], order[::-1][:k]
    extremes = f"{prefix}-best-worst.png"
    save_grid(folder / extremes, [("best: orig.", originals[best]), ("best: recon.", recons[best]),
                                  ("worst: orig.", originals[worst]),
                                  ("worst: recon.", recons[worst])],
              f"{prefix}: the {len(best)} best and worst reconstructions by MSE")
    return [first, extremes]
