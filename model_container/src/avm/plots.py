"""The two PNG artifacts (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def ratio_vs_price(
    sale_price: np.ndarray, ratio: np.ndarray, trimmed: np.ndarray, path: Path, title: str
) -> None:
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    keep = ~trimmed
    ax.scatter(sale_price[keep], ratio[keep], s=4, alpha=0.35, color="tab:blue", label="holdout sales")
    if trimmed.any():
        ax.scatter(
            sale_price[trimmed],
            ratio[trimmed],
            s=8,
            marker="x",
            color="tab:red",
            label=f"trimmed outliers ({int(trimmed.sum())})",
        )
    ax.axhline(
        float(np.median(ratio[keep])) if keep.any() else 1.0, color="black", lw=1, label="median ratio"
    )
    ax.axhspan(0.9, 1.1, color="tab:green", alpha=0.08, label="IAAO level 0.90-1.10")
    ax.set_xscale("log")
    ax.set_xlabel("sale price ($, log scale)")
    ax.set_ylabel("ratio = estimate / sale price")
    lo, hi = np.quantile(ratio, [0.005, 0.995]) if ratio.size else (0.5, 1.5)
    ax.set_ylim(min(0.5, lo), max(1.5, hi))
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def feature_importance(importance: pd.Series, path: Path, title: str) -> None:
    imp = importance.sort_values()
    total = float(imp.sum()) or 1.0
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.35 * len(imp) + 1)), dpi=110)
    ax.barh(imp.index.astype(str), imp.to_numpy() / total * 100.0, color="tab:blue")
    ax.set_xlabel("share of total gain (%)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
