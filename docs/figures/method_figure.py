"""Draw docs/figures/method.png: the temporal KD method as a block diagram.

Run: python docs/figures/method_figure.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch


def box(ax, x, y, w, h, text, color):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec="black", lw=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9, wrap=True)


def arrow(ax, x0, y0, x1, y1, style="-|>", ls="-"):
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle=style, mutation_scale=12, lw=1.2, ls=ls))


def main() -> None:
    fig, ax = plt.subplots(figsize=(11, 5.2))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 5.2)
    ax.axis("off")
    teacher, student, loss = "#f6d7a7", "#bfe3c0", "#f4b6b6"
    ax.text(0.2, 4.9, "Teacher (PyTorch, once, offline)", fontsize=11, weight="bold")
    box(ax, 0.2, 3.6, 1.6, 0.9, "audio\n16 kHz, D s", "white")
    box(ax, 2.2, 3.6, 2.0, 0.9, "wav2vec 2.0\n(XLSR) encoder\nLinear on c_1", teacher)
    box(ax, 4.6, 3.6, 2.0, 0.9, "attention maps\nA^1 ... A^m\n(heads averaged)", teacher)
    box(ax, 7.0, 3.6, 1.8, 0.9, "rollout\n(0.5A+0.5I) chain\nrow 0", teacher)
    box(ax, 9.2, 3.6, 1.6, 0.9, "teacher store\n(n frames/clip)", teacher)
    for x0, x1 in ((1.8, 2.2), (4.2, 4.6), (6.6, 7.0), (8.8, 9.2)):
        arrow(ax, x0, 4.05, x1, 4.05)

    ax.text(0.2, 2.85, "Student (Keras, trained with KD, shipped as TFLite)", fontsize=11, weight="bold")
    box(ax, 0.2, 1.5, 1.6, 0.9, "audio\n16 kHz, D s", "white")
    box(ax, 2.2, 1.5, 1.6, 0.9, "MFCC\n(in the model)", student)
    box(ax, 4.2, 1.5, 2.0, 0.9, "encoder\n(RNN / CNN)\nc'_1 ... c'_n'", student)
    box(ax, 6.6, 2.0, 2.0, 0.7, "attention branch\nq = Dense(c'_mid)\na_S = softmax(c' q)", student)
    box(ax, 6.6, 0.9, 2.0, 0.7, "classifier\nlogits", student)
    box(ax, 9.2, 1.45, 1.6, 1.0, "L = λ KL(a_S || a_T)\n+ (1-λ) CE", loss)
    for x0, x1 in ((1.8, 2.2), (3.8, 4.2)):
        arrow(ax, x0, 1.95, x1, 1.95)
    arrow(ax, 6.2, 2.1, 6.6, 2.35)
    arrow(ax, 6.2, 1.8, 6.6, 1.25)
    arrow(ax, 8.6, 2.35, 9.2, 2.1)
    arrow(ax, 8.6, 1.25, 9.2, 1.75)
    arrow(ax, 10.0, 3.6, 10.0, 2.45)
    ax.text(10.08, 3.0, "interpolate\nto n' steps", fontsize=8)
    ax.text(6.6, 0.35, "export: the attention branch is stripped -> zero inference overhead", fontsize=9,
            style="italic")
    out = Path(__file__).with_name("method.png")
    fig.savefig(out, dpi=120, bbox_inches="tight")
    print(out)


if __name__ == "__main__":
    main()
