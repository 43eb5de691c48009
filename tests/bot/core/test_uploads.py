"""The one staging of an upload and the one "too big" line (the adapters' tests drive both
through the real chat libraries; these pin the edges)."""

from __future__ import annotations

import pytest

from memeswap.bot.core.uploads import staged_name, staged_upload, too_big


@pytest.mark.parametrize("declared, name", [
    ("image/gif", "upload.gif"), ("video/mp4", "upload.mp4"), ("video/x-matroska", "upload.mkv"),
    ("IMAGE/JPEG; charset=binary", "upload.jpg"), ("video/x-msvideo", "upload.avi"),
    ("application/x-made-up", "upload.bin"), ("../../etc/passwd", "upload.bin"), ("", "upload.bin"),
    (None, "upload.bin"),
])
def test_the_staged_name_is_the_bots_with_the_declared_types_extension(declared, name):
    assert staged_name(declared) == name


def test_the_staging_folder_is_gone_afterwards_even_after_an_error(tmp_path):
    with pytest.raises(RuntimeError), staged_upload(b"GIF89a", "image/gif", "memeswap-test-") as path:
        assert path.read_bytes() == b"GIF89a" and path.name == "upload.gif"
        raise RuntimeError("the use case failed")
    assert not path.parent.exists()


@pytest.mark.parametrize("size, where, line", [
    (3 * 1024 * 1024, "", "That file is 3.0 MB; I can take files up to 2.0 MB. Send a smaller one"),
    (None, "", "That file is too big; I can take files up to 2.0 MB. Send a smaller one"),
    (1024, " from Telegram", "That file is too big; I can take files up to 2.0 MB from Telegram. Send a smaller one"),
])
def test_too_big_is_one_line_with_the_size_when_known(size, where, line):
    error = too_big(2 * 1024 * 1024, size, where)
    assert str(error) == line and error.code == "too_large"
