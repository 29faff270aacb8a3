"""What the user meant by a training folder or a CIFAR source: hidden and empty folders, class lists, bad archives.

The same rules hold for `transform --source FOLDER` and `train local --data-dir FOLDER` (one
implementation, data_prep.dataset.transform.scan_folder), and every bad source ends in one line and
exit status 2, never a traceback.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from data_prep.cli import main
from data_prep.dataset import transform
from data_prep.training.data import TrainingDataError, load_training_data
from testkit.cifar import make_cifar_archive, write_tar
from testkit.images import EXAMPLE_CLASSES, labelled_folder, png_bytes


@pytest.fixture
def folder_from_a_mac(tmp_path) -> Path:
    """bicycle/ and motorcycle/ as a zip made on macOS unpacks them: an empty __MACOSX/, AppleDouble files,
    a .git/ with files in it, and an empty folder someone forgot."""
    root = labelled_folder(tmp_path / "photos", per_class=6)
    (root / "__MACOSX").mkdir()
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "HEAD.png").write_bytes(png_bytes())
    (root / "scooter").mkdir()
    (root / "bicycle" / "._bicycle_s_000000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    return root


def run(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["data_prep", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def test_hidden_and_empty_folders_are_not_classes_and_each_is_named_in_a_warning(folder_from_a_mac):
    warnings: list[str] = []
    labelled = transform.scan_folder(folder_from_a_mac, log=warnings.append)
    assert labelled.class_names == ["bicycle", "motorcycle"]
    assert [p.name for p in labelled.images["bicycle"]] == [f"bicycle_s_{i:06d}.png" for i in range(6)]
    assert warnings == [
        f"warning: ignoring {folder_from_a_mac / '.git'}: hidden folders are not labels",
        f"warning: ignoring {folder_from_a_mac / '__MACOSX'}: hidden folders are not labels",
        f"warning: ignoring {folder_from_a_mac / 'scooter'}: no images in it",
    ]


def test_an_explicit_class_list_picks_and_orders_the_classes(folder_from_a_mac):
    for i in range(3):
        (folder_from_a_mac / "scooter" / f"{i}.png").write_bytes(png_bytes(seed=i))
    assert transform.folder_labels(folder_from_a_mac, ["motorcycle", "bicycle"]) == ["motorcycle", "bicycle"]
    examples = transform.folder_examples(folder_from_a_mac, ["motorcycle", "bicycle"], 0.0)
    assert sorted({(e.class_index, e.filename.split("_")[0]) for e in examples}) == [(0, "motorcycle"),
                                                                                       (1, "bicycle")]


def test_a_requested_class_with_no_images_is_refused_by_name(folder_from_a_mac):
    with pytest.raises(transform.EmptyClassError, match=r"class 'scooter' has no images .* in .*photos/scooter"):
        transform.scan_folder(folder_from_a_mac, ["bicycle", "scooter"])
    with pytest.raises(transform.UnknownClassError, match=r"unknown class '__MACOSX'; valid names: bicycle, "
                                                          r"motorcycle, scooter"):
        transform.scan_folder(folder_from_a_mac, ["bicycle", "__MACOSX"])


def test_a_class_whose_images_all_fall_in_validation_is_refused_by_name(tmp_path):
    root = labelled_folder(tmp_path / "photos", per_class=6)
    (root / "tram").mkdir()
    held_out = next(f"{i}.png" for i in range(1000) if transform._is_test(f"tram/{i}.png", 0.2))
    (root / "tram" / held_out).write_bytes(png_bytes())
    with pytest.raises(TrainingDataError, match="class 'tram' has no training images"):
        load_training_data(root, validation_fraction=0.2)


def test_training_on_a_folder_from_a_mac_sees_two_classes_and_says_what_it_skipped(folder_from_a_mac):
    warnings: list[str] = []
    train, validation, names = load_training_data(folder_from_a_mac, 0.25, log=warnings.append)
    assert names == ["bicycle", "motorcycle"]  # what train_local writes to metadata.json: a 2-class model
    assert len(train) + len(validation) == 12  # the AppleDouble ._ file is not an image
    assert [w.rsplit("/", 1)[1] for w in warnings] == [".git: hidden folders are not labels",
                                                       "__MACOSX: hidden folders are not labels",
                                                       "scooter: no images in it"]


def test_train_local_classes_option_means_what_it_means_for_transform(folder_from_a_mac, tmp_path, monkeypatch,
                                                                       capsys):
    status, _, err = run(["train", "local", "--data-dir", str(folder_from_a_mac), "--model-dir", str(tmp_path / "m"),
                          "--classes", "bicycle,scooter"], monkeypatch, capsys)
    assert status == 2
    lines = " ".join(err.split())  # rich wraps long lines off a terminal
    assert f"warning: ignoring {folder_from_a_mac / '__MACOSX'}: hidden folders are not labels" in lines
    assert err.strip().splitlines()[-1] == (
        f"TrainingDataError: {folder_from_a_mac}: class 'scooter' has no images (.jpeg, .jpg, .png) in "
        f"{folder_from_a_mac / 'scooter'}")


def test_train_local_classes_picks_classes_of_a_built_dataset(tmp_path):
    source = labelled_folder(tmp_path / "photos", per_class=8)
    (source / "tram").mkdir()
    for i in range(8):
        (source / "tram" / f"tram_{i}.png").write_bytes(png_bytes(seed=i))
    examples = transform.folder_examples(source, None, 0.25)
    transform.write_dataset(examples, ["bicycle", "motorcycle", "tram"], tmp_path / "ds", source="t")
    train, validation, names = load_training_data(tmp_path / "ds", 0.25, classes=["tram", "bicycle"])
    assert names == ["tram", "bicycle"]
    assert sorted(set(train.labels.tolist())) == [0, 1]
    assert len(train) + len(validation) == 16
    assert all(name.startswith(("tram", "bicycle")) for name in train.names + validation.names)
    assert all((label == 0) == name.startswith("tram") for label, name in zip(train.labels, train.names, strict=True))


def test_transform_from_a_folder_follows_the_same_rules(folder_from_a_mac, tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / "dataset"
    status, out, err = run(["transform", "--source", str(folder_from_a_mac), "--out", str(out_dir), "--classes",
                            ",".join(EXAMPLE_CLASSES)], monkeypatch, capsys)  # the folder's classes, not the template's
    assert status == 0, err
    assert json.loads((out_dir / "dataset.json").read_text())["class_names"] == list(EXAMPLE_CLASSES)
    assert "__MACOSX: hidden folders are not labels" in " ".join(err.split())
    status, _, err = run(["transform", "--source", str(folder_from_a_mac), "--out", str(out_dir),
                          "--classes", "bicycle,scooter"], monkeypatch, capsys)
    assert (status, err.strip().splitlines()[-1]) == (
        2, f"EmptyClassError: class 'scooter' has no images (.jpeg, .jpg, .png) in {folder_from_a_mac / 'scooter'}")


def _tar_bytes(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _cifar_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "real-format.tar.gz"
    make_cifar_archive(path)
    return path.read_bytes()


BAD_SOURCES = {
    "a text file": (lambda tmp: b"not an archive\n" * 40, "NotAnArchiveError",
                    "is not a tar archive (CIFAR-100 is cifar-100-python.tar.gz) nor a folder of <label>/<image> "
                    "files"),
    "an empty file": (lambda tmp: b"", "NotAnArchiveError", "is not a tar archive"),
    "a gzip of text": (lambda tmp: gzip.compress(b"plain text " * 99), "NotAnArchiveError",
                       "is a gzip file but holds no tar archive"),
    "a truncated download": (lambda tmp: _cifar_bytes(tmp)[:5000], "CorruptArchiveError",
                             "is a damaged or truncated gzip file (Compressed file ended before the end-of-stream "
                             "marker was reached); download it again"),
    "a corrupted download": (lambda tmp: (lambda d: d[:300] + bytes(b ^ 0x5A for b in d[300:900]) + d[900:])(
        _cifar_bytes(tmp)), "CorruptArchiveError", "is a damaged or truncated gzip file"),
    "a truncated plain tar": (lambda tmp: _tar_bytes({"cifar-100-python/meta": b"x" * 5000}, "w")[:3000],
                              "CorruptArchiveError", "is a damaged or truncated tar archive"),
    "a tar of something else": (lambda tmp: _tar_bytes({"photos/a.png": png_bytes(), "README": b"hi"}),
                                "NotCifarArchiveError",
                                "is not CIFAR-100 (python version): it has no cifar-100-python/train, "
                                "cifar-100-python/test, cifar-100-python/meta (found README, photos/a.png)"),
    "a tar missing the test split": (lambda tmp: _tar_bytes({"cifar-100-python/train": b"1",
                                                             "cifar-100-python/meta": b"2"}),
                                     "NotCifarArchiveError", "it has no cifar-100-python/test (found"),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_a_source_that_is_not_cifar_ends_in_one_named_line_and_status_2(case, tmp_path, monkeypatch, capsys):
    make, error, message = BAD_SOURCES[case]
    source = tmp_path / "cifar-100-python.tar.gz"
    source.write_bytes(make(tmp_path))
    out_dir = tmp_path / "dataset"
    status, out, err = run(["transform", "--source", str(source), "--out", str(out_dir)], monkeypatch, capsys)
    assert status == 2
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]  # after the (empty) progress bar
    assert line.startswith(f"{error}: {source} ")
    assert message in line
    assert not out_dir.exists()  # refused before anything is written


def test_archive_checks_do_not_refuse_the_real_layout(tmp_path):
    archive = tmp_path / "cifar.tar.gz"
    make_cifar_archive(archive)
    transform.safe_extract(archive, tmp_path / "x")
    assert sorted(p.name for p in (tmp_path / "x" / "cifar-100-python").iterdir()) == ["meta", "test", "train"]


def test_unsafe_members_are_still_refused_before_missing_ones(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    write_tar(archive, {"../outside": b"x"})
    with pytest.raises(transform.UnsafeArchiveError):
        transform.safe_extract(archive, tmp_path / "x")


def test_a_folder_with_one_class_left_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "photos" / "bicycle").mkdir(parents=True)
    (tmp_path / "photos" / "bicycle" / "a.png").write_bytes(png_bytes())
    (tmp_path / "photos" / "__MACOSX" / "bicycle").mkdir(parents=True)
    status, _, err = run(["train", "local", "--data-dir", str(tmp_path / "photos"), "--model-dir",
                          str(tmp_path / "m")], monkeypatch, capsys)
    assert status == 2
    assert err.strip().splitlines()[-1] == (
        f"TrainingDataError: {tmp_path / 'photos'}: {tmp_path / 'photos'} must hold one sub-folder per label (at least "
        f"two, each with images), found ['bicycle']")
