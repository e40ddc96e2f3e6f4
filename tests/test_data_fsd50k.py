"""FSD50K reader on a small generated tree."""

import numpy as np
import pytest
from conftest import write_tone

from kws_kd.data.fsd50k import load_fsd50k_clip, multi_hot, read_fsd50k
from kws_kd.data.load import load_dataset
from kws_kd.errors import KwsKdError


def make_fsd(root, bad_label=False):
    gt = root / "FSD50K.ground_truth"
    gt.mkdir(parents=True)
    (gt / "vocabulary.csv").write_text("0,Bark,/m/05tny_\n1,Dog,/m/0bt9lr\n2,Music,/m/04rlf\n3,Guitar,/m/0342h\n")
    (gt / "dev.csv").write_text(
        "fname,labels,mids,split\n"
        '101,"Bark,Dog","/m/05tny_,/m/0bt9lr",train\n'
        '102,Music,/m/04rlf,val\n'
        f'103,"Guitar,{"Banjo" if bad_label else "Music"}","/m/0342h,/m/04rlf",train\n'
    )
    (gt / "eval.csv").write_text('fname,labels,mids\n201,"Dog,Music","/m/0bt9lr,/m/04rlf"\n')
    for name, sec in (("101", 0.5), ("102", 2.0), ("103", 1.0)):
        write_tone(root / "FSD50K.dev_audio" / f"{name}.wav", sec, rate=44100)
    write_tone(root / "FSD50K.eval_audio" / "201.wav", 0.3, rate=44100)
    return root


def test_multi_hot_parsing(tmp_path):
    root = make_fsd(tmp_path / "fsd")
    m = load_dataset(root, clip_seconds=1.5)
    assert m.multi_label and m.label_names == ["Bark", "Dog", "Music", "Guitar"]
    by_id = {c.clip_id: c for c in m.clips}
    assert {c.split for c in m.clips} == {"train", "validation", "test"}
    assert by_id["dev/102"].split == "validation" and by_id["eval/201"].split == "test"
    np.testing.assert_array_equal(multi_hot(by_id["dev/101"].labels, m.label_names), [1, 1, 0, 0])
    np.testing.assert_array_equal(multi_hot(by_id["eval/201"].labels, m.label_names), [0, 1, 1, 0])
    assert m.counts()["train"] == {"Bark": 1, "Dog": 1, "Guitar": 1, "Music": 1}
    short = load_fsd50k_clip(by_id["dev/101"], 1.5)
    assert short.shape == (24000,) and np.all(short[8100:] == 0) and np.abs(short[:7900]).max() > 0.3
    assert load_fsd50k_clip(by_id["dev/102"], 1.5).shape == (24000,)


def test_label_not_in_vocabulary(tmp_path):
    root = make_fsd(tmp_path / "fsd", bad_label=True)
    with pytest.raises(KwsKdError, match=r"dev\.csv:4: label 'Banjo' is not in vocabulary\.csv"):
        read_fsd50k(root)
