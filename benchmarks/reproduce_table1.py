"""Reproduce the paper's Table 1 protocol (FSD50K, test mAP).

students x lambda x seeds on FSD50K (multi-label, 200 classes, clips padded to
30 s), mean ± std, with the teacher row. FSD50K cannot be downloaded here, so it
needs the real dataset folder and a multi-label teacher fine-tuned on it
(`kws-kd teacher finetune --data FSD50K_ROOT --checkpoint XLSR_DIR ...`):

    python benchmarks/reproduce_table1.py --fsd50k /data/FSD50K --teacher /models/xlsr_fsd50k \\
        --steps 20000 --batch-size 100 --eval-every 400 --out runs/table1

Every run is a cached stage: rerunning resumes. Writes OUT/results.json,
OUT/results.csv and the markdown report (default docs/RESULTS_FSD50K.md).
"""

from __future__ import annotations

import argparse
import sys

from protocol import add_grid_arguments, run_grid, write_report

from kws_kd.experiment import folder_data

PAPER = {"teacher": (0.5498,), "lstm_p": (0.1141, 0.1300), "tc_resnet": (0.1814, 0.1951),
         "crnn": (0.2789, 0.3053), "att_rnn": (0.2856, 0.3471), "mhatt_rnn": (0.2647, 0.3317)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--fsd50k", required=True, help="FSD50K root (FSD50K.dev_audio/, FSD50K.eval_audio/, FSD50K.ground_truth/)")
    add_grid_arguments(p, steps=20000, batch_size=100, eval_every=400)
    p.add_argument("--out", default="runs/table1", help="folder for the runs (cached stages)")
    p.add_argument("--report", default="docs/RESULTS_FSD50K.md", help="markdown report to write")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    result = run_grid(args, [None], lambda opts, runner: folder_data(args.fsd50k))
    paper = [f"{k} " + " -> ".join(f"{v:.4f}" for v in vals) for k, vals in PAPER.items()]
    print(write_report(result, args, [None], argv, script="reproduce_table1.py",
                       title="Table 1 protocol: FSD50K", metric="test mAP", metric_scale=1.0, paper=paper))
    return 0


if __name__ == "__main__":
    sys.exit(main())
