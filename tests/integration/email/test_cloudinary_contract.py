"""CONTRACT tests of the Cloudinary client against the Cloudinary STAND-IN (devkit/standins/cloudinary.py), which
checks signatures as Cloudinary documents them with code of its own; and the offload pass of a storage folder:
a file is deleted only after Cloudinary's answer proves it holds the same bytes."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.standins.cloudinary import CloudinaryStandin, expected_signature
from nextmavens.manifest.models import MediaOffload
from nextmavens.media.cloudinary import CloudinaryClient, CloudinaryError
from nextmavens.media.offload import RECORD, offload_pass
from nextmavens.media.references import ReferencesError
from nextmavens.media.signing import sign, string_to_sign

SECRET = "cloudinary-standin-secret-0123456789"


@pytest.fixture
def cloud() -> Iterator[CloudinaryStandin]:
    with CloudinaryStandin("demo", "123456789", SECRET) as standin:
        yield standin


def client(cloud: CloudinaryStandin, **kwargs: object) -> CloudinaryClient:
    values: dict[str, object] = {"cloud_name": "demo", "api_key": "123456789", "api_secret": SECRET}
    values.update(kwargs)
    return CloudinaryClient(base_url=cloud.base_url, **values)  # type: ignore[arg-type]


def test_contract_the_signature_is_the_documented_one() -> None:
    # the documentation's own example: eager, public_id and timestamp, the secret appended, SHA-1
    params = {"timestamp": 1315060510, "public_id": "sample_image", "eager": "w_400,h_300,c_pad|w_260,h_200,c_crop"}
    assert string_to_sign({**params, "file": "x", "api_key": "k", "resource_type": "image", "cloud_name": "c"}) == (
        "eager=w_400,h_300,c_pad|w_260,h_200,c_crop&public_id=sample_image&timestamp=1315060510"
    )
    assert sign(params, "abcd") == hashlib.sha1(
        b"eager=w_400,h_300,c_pad|w_260,h_200,c_crop&public_id=sample_image&timestamp=1315060510abcd"
    ).hexdigest()
    assert sign(params, "abcd") == expected_signature({k: str(v) for k, v in params.items()}, "abcd", "sha1")


def test_contract_upload_list_and_destroy(cloud: CloudinaryStandin) -> None:
    c = client(cloud)
    uploaded = c.upload(b"photo-bytes", "a/cat", "nextmavens/shop", "image", "cat.jpg")
    assert uploaded.public_id == "nextmavens/shop/a/cat" and uploaded.bytes == 11
    assert uploaded.etag == hashlib.md5(b"photo-bytes").hexdigest()  # noqa: S324
    c.upload(b"other", "dog", "nextmavens/web", "image", "dog.jpg")
    listed = [r["public_id"] for r in c.list_folder("nextmavens/shop", "image")]
    assert listed == ["nextmavens/shop/a/cat"]
    assert c.destroy("nextmavens/shop/a/cat", "image") is True
    assert c.destroy("nextmavens/shop/a/cat", "image") is False
    assert list(c.list_folder("nextmavens/shop", "image")) == []


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"api_secret": "wrong-secret"}, "Invalid Signature"),
        ({"api_key": "000"}, "Invalid api_key"),
        ({"clock": lambda: time.time() - 3700}, "Stale request"),
    ],
)
def test_contract_refused_requests(cloud: CloudinaryStandin, kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(CloudinaryError, match=words) as caught:
        client(cloud, **kwargs).upload(b"x", "a", "f", "raw", "a.txt")
    assert caught.value.status == 401 and not cloud.state.assets
    assert "wrong-secret" not in str(caught.value) and SECRET not in str(caught.value)


def test_contract_listing_needs_the_key_and_secret(cloud: CloudinaryStandin) -> None:
    with pytest.raises(CloudinaryError, match="401"):
        list(client(cloud, api_secret="wrong").list_folder("nextmavens/shop", "raw"))


def test_contract_another_cloud_or_resource_type_is_not_found(cloud: CloudinaryStandin) -> None:
    # the credentials are this cloud's alone, and Cloudinary serves only its own resource types
    with pytest.raises(CloudinaryError, match="404"):
        client(cloud, cloud_name="other").upload(b"x", "a", "f", "raw", "a.txt")
    with pytest.raises(CloudinaryError, match="404"):
        client(cloud).destroy("f/a", "scripts")  # the client's upload refuses such a type itself
    with pytest.raises(CloudinaryError, match="404"):
        list(client(cloud, cloud_name="other").list_folder("f", "raw"))
    with pytest.raises(CloudinaryError, match="404"):
        list(client(cloud).list_folder("f", "scripts"))
    assert not cloud.state.assets
    client(cloud).upload(b"x", "a", "f", "raw", "a.txt")
    assert [r["public_id"] for r in client(cloud).list_folder("f", "raw")] == ["f/a"]


def _file(root: Path, relative: str, content: bytes, age_days: float) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))
    return path


def test_offload_moves_old_matching_files_and_keeps_the_rest(cloud: CloudinaryStandin, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    _file(root, "uploads/2026/old.jpg", b"old-photo", 40)
    _file(root, "uploads/new.jpg", b"new-photo", 1)
    _file(root, "uploads/old.txt", b"old-text", 40)
    _file(root, "videos/old.mp4", b"old-video", 40)
    os.symlink(tmp_path / "outside.jpg", root / "uploads" / "link.jpg")
    (tmp_path / "outside.jpg").write_bytes(b"not ours")
    os.utime(tmp_path / "outside.jpg", (0, 0))
    policy = MediaOffload(paths=["uploads/**/*.jpg", "videos/*.mp4"], older_than_days=30)
    report = offload_pass(root, "shop", policy, client(cloud), time.time())
    assert report.ok and sorted(report.offloaded) == ["uploads/2026/old.jpg", "videos/old.mp4"]
    assert not (root / "uploads/2026/old.jpg").exists() and (root / "uploads/new.jpg").exists()
    assert (root / "uploads/old.txt").exists() and (tmp_path / "outside.jpg").exists()
    record = json.loads((root / RECORD).read_text())
    assert set(record) == {"uploads/2026/old.jpg", "videos/old.mp4"}
    assert cloud.state.assets[("image", "nextmavens/shop/uploads/2026/old")].content == b"old-photo"
    assert report.bytes_freed == len(b"old-photo") + len(b"old-video")


def test_offload_keeps_a_file_cloudinary_did_not_store_intact(cloud: CloudinaryStandin, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    _file(root, "a.jpg", b"precious-bytes", 40)
    cloud.state.corrupt_next_uploads = 1
    report = offload_pass(root, "shop", MediaOffload(paths=["*.jpg"], older_than_days=30), client(cloud), time.time())
    assert not report.ok and report.failed[0][0] == "a.jpg" and "checksum" in report.failed[0][1]
    assert (root / "a.jpg").read_bytes() == b"precious-bytes" and not (root / RECORD).exists()


def test_offload_keeps_everything_when_cloudinary_refuses(cloud: CloudinaryStandin, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    _file(root, "a.jpg", b"bytes", 40)
    bad = client(cloud, api_secret="wrong")
    report = offload_pass(root, "shop", MediaOffload(paths=["*.jpg"], older_than_days=30), bad, time.time())
    assert not report.ok and (root / "a.jpg").exists()


def test_offload_without_a_login_for_its_references_uploads_nothing(cloud: CloudinaryStandin, tmp_path: Path) -> None:
    """References declared but no login to the project's database: asked once, and no due file is uploaded only to
    be kept here (every pass would send them all again)."""
    root = tmp_path / "shop"
    _file(root, "a.jpg", b"a-bytes", 40)
    _file(root, "b.jpg", b"b-bytes", 40)
    reference = {"schema": "public", "table": "photos", "column": "path"}
    policy = MediaOffload.model_validate({"paths": ["*.jpg"], "older_than_days": 30, "references": [reference]})
    asked: list[int] = []

    def no_login() -> str:
        asked.append(1)
        raise ReferencesError("shop has no owner login yet (not applied)")

    for login in (no_login, None):
        report = offload_pass(root, "shop", policy, client(cloud), time.time(), owner_login=login)
        assert not report.ok and sorted(p for p, _ in report.failed) == ["a.jpg", "b.jpg"]
        assert all(why.endswith(": kept here") for _, why in report.failed)
        assert (root / "a.jpg").exists() and (root / "b.jpg").exists() and not (root / RECORD).exists()
    assert len(asked) == 1 and not cloud.state.assets


def test_the_media_offload_command_runs_a_pass_per_declared_project(
    cloud: CloudinaryStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from nextmavens.cli import main
    from tests.support.projects import write_project

    projects = tmp_path / "projects"
    write_project(projects, "acme", "shop", media_offload={"paths": ["*.jpg"], "older_than_days": 7})
    write_project(projects, "acme", "plain")
    storage = tmp_path / "storage"
    _file(storage / "shop", "a.jpg", b"shop-photo", 10)
    _file(storage / "plain", "a.jpg", b"plain-photo", 10)
    key_file = tmp_path / "cloudinary.key"
    key_file.write_text(f"123456789:{SECRET}\n")
    key_file.chmod(0o600)
    for name, value in {
        "NEXTMAVENS_CLOUDINARY_CLOUD": "demo",
        "NEXTMAVENS_CLOUDINARY_KEY_FILE": str(key_file),
        "NEXTMAVENS_CLOUDINARY_URL": cloud.base_url,
        "NEXTMAVENS_STORAGE_ROOT": str(storage),
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["media", "offload", "--projects", str(projects), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["acme/shop"]["offloaded"] == ["a.jpg"]
    assert not (storage / "shop" / "a.jpg").exists() and (storage / "plain" / "a.jpg").exists()
    key_file.write_text("no-colon\n")
    refused = CliRunner().invoke(main, ["media", "offload", "--projects", str(projects)])
    assert refused.exit_code == 1 and "api_key:api_secret" in refused.output


def test_attachments_are_offloaded_only_when_their_content_checks_out(cloud: CloudinaryStandin) -> None:
    import base64

    from nextmavens.media.attachments import offload_attachments

    good, bad = b"invoice-pdf", b"tampered"
    described = [
        {"filename": "invoice.pdf", "sha256": hashlib.sha256(good).hexdigest()},
        {"filename": "x.png", "sha256": hashlib.sha256(b"original").hexdigest()},
        {"filename": "big.bin", "sha256": "0" * 64},
    ]
    contents = [base64.b64encode(good).decode(), base64.b64encode(bad).decode(), None]
    out = offload_attachments(client(cloud), "shop", "d1", described, contents)
    assert out[0]["url"].endswith("nextmavens/shop/inbound/d1/0-invoice.pdf")
    assert "sha256" in out[1]["offload_error"] and "url" not in out[1]
    assert out[2] == described[2]
    cloud.state.corrupt_next_uploads = 1
    [again] = offload_attachments(client(cloud), "shop", "d2", described[:1], contents[:1])
    assert "checksum" in again["offload_error"] and "url" not in again
