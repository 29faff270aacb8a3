from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.artefacts import read_manifest
from data_prep.dataset import cifar, transform
from testkit.cifar import make_cifar_archive, write_tar
from testkit.images import png_bytes


@pytest.fixture
def archive(tmp_path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "cifar-100-python.tar.gz"
    return path, make_cifar_archive(path)


def build(archive_path: Path, md5s: dict[str, str], out: Path, classes=("bicycle", "motorcycle")) -> dict:
    extracted = out.parent / f"{out.name}-extracted"
    transform.safe_extract(archive_path, extracted)
    examples = transform.cifar_examples(extracted, list(classes), md5s)
    return transform.write_dataset(examples, list(classes), out, source=str(archive_path))


def test_cifar_archive_becomes_pngs_lst_files_and_manifest(archive, tmp_path):
    out = tmp_path / "dataset"
    description = build(*archive, out)

    assert description["counts"] == {"train": {"bicycle": 3, "motorcycle": 3}, "test": {"bicycle": 1, "motorcycle": 1}}
    assert (out / "train.lst").read_text().splitlines() == [
        "0\t0\tbicycle_s_tr00024.png", "1\t0\tbicycle_s_tr00025.png", "2\t0\tbicycle_s_tr00026.png",
        "3\t1\tmotorcycle_s_tr00144.png", "4\t1\tmotorcycle_s_tr00145.png", "5\t1\tmotorcycle_s_tr00146.png",
    ]
    assert (out / "test.lst").read_text() == "0\t0\tbicycle_s_te00008.png\n1\t1\tmotorcycle_s_te00048.png\n"
    manifest = read_manifest(out)
    row = manifest["test/motorcycle_s_te00048.png"]
    assert (row.label, row.class_index, row.split) == ("motorcycle", 1, "test")
    assert row.sha256 == hashlib.sha256((out / "test/motorcycle_s_te00048.png").read_bytes()).hexdigest()


def test_pixels_are_the_rows_red_then_green_then_blue_planes(archive, tmp_path):
    out = tmp_path / "dataset"
    build(*archive, out)
    extracted = tmp_path / "dataset-extracted" / "cifar-100-python"
    split = cifar.CifarSplit.load(extracted / "test")
    row = split.data[split.filenames.index("bicycle_s_te00008.png")]
    image = np.asarray(Image.open(out / "test/bicycle_s_te00008.png"))
    assert image.shape == (32, 32, 3)
    assert image[0, 0].tolist() == [row[0], row[1024], row[2048]]
    assert image[31, 31].tolist() == [row[1023], row[2047], row[3071]]


def test_class_order_follows_the_request(archive, tmp_path):
    out = tmp_path / "dataset"
    description = build(*archive, out, classes=("motorcycle", "bicycle", "tractor"))
    assert description["class_names"] == ["motorcycle", "bicycle", "tractor"]
    assert read_manifest(out)["test/tractor_s_te00089.png"].class_index == 2
    assert (out / "test.lst").read_text().splitlines()[0] == "0\t1\tbicycle_s_te00008.png"


def test_rerunning_produces_identical_files(archive, tmp_path):
    build(*archive, tmp_path / "a")
    build(*archive, tmp_path / "b")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    differing = [f for f in files_a if (tmp_path / "a" / f).read_bytes() != (tmp_path / "b" / f).read_bytes()]
    assert differing == []


def test_unknown_class_names_list_the_valid_ones(archive, tmp_path):
    with pytest.raises(transform.UnknownClassError, match="unknown class 'scooter'; valid names: apple, aquarium_fish"):
        build(*archive, tmp_path / "d", classes=("bicycle", "scooter"))


def test_member_checksum_is_verified_before_unpickling(archive, tmp_path):
    path, md5s = archive
    wrong = {**md5s, "cifar-100-python/train": "0" * 32}
    with pytest.raises(cifar.ChecksumError, match="cifar-100-python/train: MD5 .*, expected 0000"):
        build(path, wrong, tmp_path / "d")


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/evil.txt", "cifar-100-python/../../evil.txt"])
def test_path_traversal_members_are_refused(tmp_path, member):
    archive = tmp_path / "evil.tar.gz"
    write_tar(archive, {"cifar-100-python/meta": b"x", member: b"owned"})
    with pytest.raises(transform.UnsafeArchiveError, match="path leaves the target folder"):
        transform.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_links_are_refused(tmp_path):
    archive = tmp_path / "link.tar.gz"
    write_tar(archive, {"cifar-100-python/meta": b"x"}, links={"cifar-100-python/train": "/etc/passwd"})
    with pytest.raises(transform.UnsafeArchiveError, match="links are not expected"):
        transform.safe_extract(archive, tmp_path / "out")


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "meta"
    path.write_bytes(pickle.dumps({b"fine_label_names": Exploit()}))
    with pytest.raises(cifar.UnsafePickleError, match="builtins.print"):
        cifar.load_label_names(path)


def test_image_folder_source_gives_the_same_layout(tmp_path):
    source = tmp_path / "photos"
    for label, count in (("bicycle", 6), ("motorcycle", 5)):
        (source / label).mkdir(parents=True)
        for i in range(count):
            (source / label / f"IMG_{i:04d}.png").write_bytes(png_bytes(64, 48, seed=i, mode="RGBA"))
    Image.new("RGB", (40, 40)).save(source / "bicycle" / "photo.jpg")

    examples = transform.folder_examples(source, None, test_fraction=0.3)
    description = transform.write_dataset(examples, ["bicycle", "motorcycle"], tmp_path / "out", source=str(source))

    counts = description["counts"]
    assert sum(counts["train"].values()) + sum(counts["test"].values()) == 12
    assert counts["test"] and sum(counts["test"].values()) >= 1
    names = [line.split("\t")[2] for line in (tmp_path / "out/train.lst").read_text().splitlines()]
    names += [line.split("\t")[2] for line in (tmp_path / "out/test.lst").read_text().splitlines()]
    assert len(set(names)) == 12  # IMG_0000..4 exist under both labels: names are made unique
    manifest = read_manifest(tmp_path / "out")
    assert {row.label for row in manifest.values()} == {"bicycle", "motorcycle"}
    for row in manifest.values():
        image = Image.open(tmp_path / "out" / row.file)
        assert (image.mode, image.size) == ("RGB", (32, 32))
    assert json.loads((tmp_path / "out/dataset.json").read_text())["class_names"] == ["bicycle", "motorcycle"]


def test_image_folder_split_is_stable_when_files_are_added(tmp_path):
    source = tmp_path / "photos"
    for label in ("a", "b"):
        (source / label).mkdir(parents=True)
        for i in range(10):
            (source / label / f"{i}.png").write_bytes(png_bytes(seed=i))
    before = {(e.class_index, e.filename): e.split for e in transform.folder_examples(source, None, 0.3)}
    (source / "a" / "new.png").write_bytes(png_bytes(seed=99))
    after = {(e.class_index, e.filename): e.split for e in transform.folder_examples(source, None, 0.3)}
    assert {k: after[k] for k in before} == before


def test_folder_with_a_non_image_names_the_file(tmp_path):
    source = tmp_path / "photos"
    for label in ("a", "b"):
        (source / label).mkdir(parents=True)
    (source / "a" / "broken.png").write_bytes(b"nope")
    (source / "b" / "fine.png").write_bytes(png_bytes())
    with pytest.raises(transform.DatasetSourceError, match="broken.png is not a readable image"):
        transform.folder_examples(source, None, 0.2)
