"""The offline bucket is left on disk when the runtime stops, Ctrl-C included, for the review page."""

from __future__ import annotations

import pytest

from workflow.offline.runtime import OfflineRuntime


def test_the_bucket_is_mirrored_when_the_runtime_stops_even_on_ctrl_c(tmp_path):
    mirror = tmp_path / "bucket"
    (mirror / "labels").mkdir(parents=True)
    (mirror / "labels" / "earlier.jsonl").write_text("a person's label\n")
    (mirror / "review").mkdir()
    (mirror / "review" / "from-an-earlier-run.json").write_text("{}")
    with pytest.raises(KeyboardInterrupt), \
            OfflineRuntime("http://127.0.0.1:9", mirror_dir=mirror, trigger=False) as runtime:
        runtime.put_image("test/a.png", b"\x89PNG a")
        runtime.s3.put_object(Bucket=runtime.bucket, Key="review/exec-1.json", Body=b'{"s3_key": "test/a.png"}')
        runtime.s3.put_object(Bucket=runtime.bucket, Key="../outside.txt", Body=b"never written")
        raise KeyboardInterrupt

    files = sorted(str(path.relative_to(mirror)) for path in mirror.rglob("*") if path.is_file())
    assert files == ["labels/earlier.jsonl", "review/exec-1.json", "test/a.png"]
    assert (mirror / "test" / "a.png").read_bytes() == b"\x89PNG a"
    assert not (tmp_path / "outside.txt").exists()
    assert runtime.mirrored == 2
