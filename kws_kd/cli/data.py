"""`kws-kd data`: build and check datasets (offline synth, babble, Noisy Speech Commands, long test streams)."""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "data", help="build and check datasets (offline synth, babble, Noisy Speech Commands)"
    )
    sub = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    p = add_command(sub, "synth", help="make a small offline Speech-Commands-layout dataset with espeak-ng")
    p.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    p.add_argument("--per-word", type=int, default=40, help="clips per word (voices x speeds x pitches sampled)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--babble-files", type=int, default=6, help="babble WAVs in _background_noise_/")
    p.add_argument("--babble-seconds", type=float, default=30.0, help="length of each babble WAV")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_synth)

    p = add_command(sub, "babble", help="write babble noise WAVs by overlaying real talkers of a Speech Commands train split")
    p.add_argument("--speech-commands", required=True, metavar="DIR", help="Speech Commands folder (either layout)")
    p.add_argument("--out", required=True, help="output noise folder")
    p.add_argument("--files", type=int, default=20, help="number of babble WAVs")
    p.add_argument("--seconds", type=float, default=30.0, help="length of each WAV")
    p.add_argument("--words", choices=("unknown", "all"), default="unknown",
                   help="source clips: only _unknown_ words (no keyword inside the noise) or every train clip")
    _split_options(p)
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_babble)

    p = add_command(sub, "noisy", help="build Noisy Speech Commands: 1 s keyword at a random offset in D s of noise")
    p.add_argument("--speech-commands", required=True, metavar="DIR", help="Speech Commands folder (either layout)")
    p.add_argument("--noise", required=True, metavar="DIR",
                   help="folder of noise audio, each file at least D s (e.g. from `kws-kd data babble`)")
    p.add_argument("--seconds", type=float, required=True, help="clip length D in seconds (paper: 2, 4, 6, 8)")
    p.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    p.add_argument("--seed", type=int, default=0, help="random seed (val/test are deterministic given it)")
    _split_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_noisy)

    p = add_command(sub, "stream", help="build long test streams: a split's clips at known times in babble + background noise",
                    description=(
                        "Long WAV files (16 kHz int16) with every keyword and _unknown_ clip of a split inserted at "
                        "known, non-overlapping times (random gaps) into babble plus the dataset's _background_noise_ "
                        "recordings, mixed 0.75 clip + 0.25 noise; labels.csv and stream.json beside them. "
                        "Input of `kws-kd eval --stream` (false rejections at a fixed false alarms per hour)."))
    p.add_argument("--data", required=True, metavar="DATASET",
                   help="dataset folder (Speech Commands, `kws-kd data synth`, a materialised kws-kd dataset)")
    p.add_argument("--out", required=True, metavar="STREAM_DIR", help="output folder (must not exist unless --overwrite)")
    p.add_argument("--split", choices=("train", "validation", "test"), default="test", help="split whose clips are inserted")
    p.add_argument("--total-minutes", type=float, default=60.0, help="total audio length (FA/h needs hours: >= 60 advised)")
    p.add_argument("--minutes-per-file", type=float, default=5.0, help="length of each WAV file")
    p.add_argument("--gap-seconds", type=float, nargs=2, metavar=("MIN", "MAX"), default=[3.0, 6.0],
                   help="random gap between clips; MIN >= 2 x the eval's 1.5 s tolerance keeps clips apart")
    p.add_argument("--noise", metavar="NOISE_DIR",
                   help="use these noise files instead of babble generated from the train split's _unknown_ words")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    _split_options(p, defaults_none=True)
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_stream)

    p = add_command(sub, "check", help="validate a dataset folder; print counts per split and label")
    p.add_argument("dir", metavar="DIR", help="dataset folder (kws-kd built, Speech Commands or FSD50K)")
    p.add_argument("--max-problems", type=int, default=20, help="problems listed before stopping the list")
    _split_options(p, defaults_none=True)
    p.set_defaults(func=_check)


def _split_options(p: argparse.ArgumentParser, defaults_none: bool = False) -> None:
    p.add_argument("--labels", choices=("12", "35"), default=None if defaults_none else "12",
                   help="12: 10 words + _silence_ + _unknown_; 35: every word")
    p.add_argument("--split-method", choices=("auto", "lists", "filename-hash", "speaker-hash"),
                   default=None if defaults_none else "auto",
                   help="auto: official lists, or speaker-hash for the test-archive layout (no lists)")
    p.add_argument("--validation-percent", type=float, default=None,
                   help="validation share (default 10 for filename-hash, 15 for speaker-hash)")
    p.add_argument("--test-percent", type=float, default=None,
                   help="test share (default 10 for filename-hash, 15 for speaker-hash)")


def _sc_options(args: argparse.Namespace) -> dict:
    return {
        "labels": args.labels,
        "split_method": args.split_method,
        "validation_percent": args.validation_percent,
        "test_percent": args.test_percent,
    }


def _synth(args: argparse.Namespace) -> int:
    from kws_kd.data.synth import build_synth

    m = build_synth(args.out, per_word=args.per_word, seed=args.seed, babble_files=args.babble_files,
                    babble_seconds=args.babble_seconds, overwrite=args.overwrite)
    print(f"wrote {len(m.clips)} clips to {args.out}")
    return 0


def _babble(args: argparse.Namespace) -> int:
    from kws_kd.data.babble import babble_sources, build_babble
    from kws_kd.data.speech_commands import read_speech_commands

    m = read_speech_commands(args.speech_commands, **{k: v for k, v in _sc_options(args).items() if v is not None})
    files = build_babble(babble_sources(m, words=args.words), args.out, num_files=args.files,
                         seconds=args.seconds, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {len(files)} babble files of {args.seconds:g} s to {args.out}")
    return 0


def _noisy(args: argparse.Namespace) -> int:
    from kws_kd.data.noisy import build_noisy
    from kws_kd.data.speech_commands import read_speech_commands

    m = read_speech_commands(args.speech_commands, seed=args.seed,
                             **{k: v for k, v in _sc_options(args).items() if v is not None})
    out = build_noisy(m, args.noise, args.seconds, args.out, seed=args.seed, overwrite=args.overwrite)
    counts = {s: len(out.split(s)) for s in ("train", "validation", "test")}
    print(f"wrote {len(out.clips)} clips of {args.seconds:g} s to {args.out} ({counts})")
    return 0


def _stream(args: argparse.Namespace) -> int:
    from kws_kd.data.load import load_dataset
    from kws_kd.data.stream import build_stream

    m = load_dataset(args.data, **_sc_options(args))
    s = build_stream(m, args.out, split=args.split, total_minutes=args.total_minutes,
                     minutes_per_file=args.minutes_per_file, gap_seconds=tuple(args.gap_seconds), noise_dir=args.noise,
                     seed=args.seed, overwrite=args.overwrite)
    counts = ", ".join(f"{k} {v}" for k, v in s.info["counts"].items())
    print(f"wrote {len(s.files)} files, {s.seconds / 60:.1f} min, {len(s.events)} clips to {args.out} ({counts})")
    return 0


def _check(args: argparse.Namespace) -> int:
    from kws_kd.data.check import check_dataset

    report = check_dataset(args.dir, max_problems=args.max_problems, **_sc_options(args))
    print(report.format())
    return 0 if report.ok else 1
