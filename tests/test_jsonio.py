"""The shared JSON reader: each failure is a one-line KwsKdError naming the file."""

import pytest

from kws_kd.errors import KwsKdError
from kws_kd.jsonio import read_json_object


def test_reads_an_object(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('{"x": [1, 2]}')
    assert read_json_object(p, "unused") == {"x": [1, 2]}


@pytest.mark.parametrize(
    "content, message",
    [(None, "missing; not a thing"), ("{oops", "not valid JSON"), ("[1, 2]", "expected a JSON object"),
     (b"\xff\xfe\x00", "not valid JSON")],
)
def test_failures_name_the_file(tmp_path, content, message):
    p = tmp_path / "a.json"
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif content is not None:
        p.write_text(content)
    with pytest.raises(KwsKdError) as exc:
        read_json_object(p, "not a thing")
    assert str(p) in str(exc.value) and message in str(exc.value)
    assert "\n" not in str(exc.value)
