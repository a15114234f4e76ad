"""The sandbox's real parts: postgres-meta from npm (installed on the host, packed into the image's context)
and the Postgres image's extensions. No network and no root: npm itself is replaced where it would run."""

from __future__ import annotations

import io
import json
import os
import runpy
import tarfile
from pathlib import Path

import pytest

from devkit.sandbox import imagebuild, npm, rootfs
from devkit.sandbox.config import LOCAL_IMAGES, SandboxConfig
from tests.support.repo import REPO


@pytest.fixture
def cfg(tmp_path: Path) -> SandboxConfig:
    return SandboxConfig(state_dir=tmp_path / "state")


def _group_images(name: str) -> dict[str, str]:
    return dict(runpy.run_path(str(REPO / "group_data" / f"{name}.py"))["images"])


def test_the_sandbox_runs_real_postgres_meta_at_the_production_pin() -> None:
    production = _group_images("all")["postgres_meta"]
    repo, _, tag = production.partition(":v")
    assert repo == "supabase/postgres-meta"
    assert npm.pinned_version() == tag
    sandbox = _group_images("sandbox")["postgres_meta"]
    assert sandbox == LOCAL_IMAGES["meta"] == f"nextmavens-local/postgres-meta:{tag}"


def test_the_pin_must_be_exact(tmp_path: Path) -> None:
    for version in ("^0.91.6", "0.91", "latest", "0.91.x"):
        pkg = tmp_path / "package.json"
        pkg.write_text(json.dumps({"dependencies": {npm.PACKAGE: version}}))
        with pytest.raises(ValueError, match="exact version"):
            npm.pinned_version(pkg)


def test_npm_runs_no_install_scripts_and_writes_no_lock_file(tmp_path: Path) -> None:
    argv = npm.install_argv(tmp_path)
    assert argv[:2] == ["npm", "install"]
    assert {"--ignore-scripts", "--no-package-lock", "--omit=dev"} <= set(argv)
    assert argv[argv.index("--prefix") + 1] == str(tmp_path)


def _fake_tree(prefix: Path, version: str) -> None:
    pkg = prefix / "node_modules" / "@supabase" / "postgres-meta"
    (pkg / "dist" / "server").mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": npm.PACKAGE, "version": version}))
    (pkg / "dist" / "server" / "server.js").write_text("// server\n")
    (pkg / "dist" / "server" / "server.js.map").write_text("{}")
    (pkg / "dist" / "server" / "server.d.ts").write_text("export {}\n")
    (prefix / "node_modules" / ".package-lock.json").write_text('{"resolved": "https://registry.invalid/x.tgz"}')
    (prefix / "node_modules" / ".bin").mkdir()
    (prefix / "node_modules" / ".bin" / "tool").symlink_to("../@supabase/postgres-meta/dist/server/server.js")


def _members(bundle: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(bundle, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def test_the_bundle_is_reproducible_and_leaves_out_npms_record_of_the_registry(tmp_path: Path) -> None:
    _fake_tree(tmp_path / "a", "0.91.6")
    npm.pack(tmp_path / "a", tmp_path / "one.tar.gz")
    # the same tree written later, with other times: the same bytes (the image's context hash stays)
    _fake_tree(tmp_path / "b", "0.91.6")
    for path in (tmp_path / "b").rglob("*"):
        os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)
    npm.pack(tmp_path / "b", tmp_path / "two.tar.gz")
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()

    members = _members(tmp_path / "one.tar.gz")
    assert "node_modules/.package-lock.json" not in members
    assert not [n for n in members if n.endswith((".map", ".d.ts"))]  # never loaded by Node
    assert "node_modules/@supabase/postgres-meta/dist/server/server.js" in members
    assert members["node_modules/.bin/tool"].issym()
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members.values())
    assert all(m.mode in (0o644, 0o755) for m in members.values() if not m.issym())


def test_ensure_bundle_refuses_another_version_and_caches(cfg: SandboxConfig, monkeypatch) -> None:
    installed = ["0.91.5"]
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **_kw) -> None:
        calls.append(argv)
        _fake_tree(Path(argv[argv.index("--prefix") + 1]), installed[0])

    monkeypatch.setattr(npm, "run", fake_run)
    cfg.npm_cache.mkdir(parents=True)
    stale = cfg.npm_cache / "postgres-meta-0.91.5-p1.tar.gz"
    stale.write_bytes(b"an older pin or packing")
    with pytest.raises(RuntimeError, match="not the pinned 0.91.6"):
        npm.ensure_bundle(cfg)
    assert not list(cfg.npm_cache.glob("*.tar.gz"))

    installed[0] = "0.91.6"
    bundle = npm.ensure_bundle(cfg)
    assert bundle.name == f"postgres-meta-0.91.6-p{npm.PACK_FORMAT}.tar.gz" and bundle.is_file()
    assert "node_modules/@supabase/postgres-meta/package.json" in _members(bundle)
    assert not (cfg.npm_cache / "postgres-meta-0.91.6").exists()  # the unpacked tree is not kept
    assert not stale.exists()  # one bundle in the cache
    assert npm.ensure_bundle(cfg) == bundle and len(calls) == 2  # cached: npm does not run again


def test_the_meta_context_carries_the_bundle_and_its_hash_follows_it(tmp_path: Path) -> None:
    dockerfile = (imagebuild.IMAGES_DIR / "meta" / "Dockerfile").read_text()
    assert f"ADD {npm.BUNDLE_NAME} " in dockerfile
    assert 'CMD ["node", "dist/server/server.js"]' in dockerfile
    bundle = tmp_path / npm.BUNDLE_NAME
    bundle.write_bytes(b"first")
    extra = {npm.BUNDLE_NAME: bundle}
    with tarfile.open(fileobj=io.BytesIO(imagebuild.context_tar("meta", extra))) as tar:
        assert {npm.BUNDLE_NAME, "Dockerfile", "package.json"} <= set(tar.getnames())
    base = tmp_path / "base-trixie-x.tar"
    before = imagebuild.context_hash("meta", base, extra)
    bundle.write_bytes(b"second")
    assert imagebuild.context_hash("meta", base, extra) != before


def test_host_inputs_only_for_the_meta_image(cfg: SandboxConfig, monkeypatch) -> None:
    made: list[SandboxConfig] = []
    monkeypatch.setattr(npm, "ensure_bundle", lambda c: made.append(c) or Path("/cache/b.tar.gz"))
    assert imagebuild.host_inputs(cfg, "meta") == {npm.BUNDLE_NAME: Path("/cache/b.tar.gz")}
    assert all(imagebuild.host_inputs(cfg, name) == {} for name in ("postgres", "redis", "standin"))
    assert made == [cfg]


def test_base_suite_needs_exactly_one_local_base(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(imagebuild, "IMAGES_DIR", tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "Dockerfile").write_text("FROM debian:bookworm\n")
    with pytest.raises(ValueError, match="expected one"):
        imagebuild.base_suite("x")
    (tmp_path / "x" / "Dockerfile").write_text("FROM nextmavens-local/debian:trixie\nRUN true\n")
    assert imagebuild.base_suite("x") == "trixie"


def test_each_base_suite_has_its_own_tarball_and_package_cache(cfg: SandboxConfig, monkeypatch) -> None:
    straps: list[tuple[str, str]] = []

    def fake_debootstrap(suite, target, mirror, c, include, debs_name=""):
        straps.append((suite, debs_name))
        target.mkdir(parents=True)

    monkeypatch.setattr(rootfs, "_debootstrap", fake_debootstrap)
    monkeypatch.setattr(rootfs, "run", lambda argv, **kw: Path(argv[argv.index("-cf") + 1]).write_bytes(b"t"))
    cfg.cache_dir.mkdir(parents=True)
    tars = rootfs.ensure_base_tars(cfg, "http://m.test/debian")
    assert set(tars) == {"bookworm", "trixie"}
    assert tars["bookworm"] != tars["trixie"] and all(p.is_file() for p in tars.values())
    # not the guest's package cache (deb_cache/trixie): the two debootstraps may run at once
    assert straps == [("bookworm", "bookworm-base"), ("trixie", "trixie-base")]
    assert {imagebuild.base_suite(name) for name in LOCAL_IMAGES} <= set(tars)


def test_the_postgres_image_has_the_extensions_and_preloads_them() -> None:
    dockerfile = (imagebuild.IMAGES_DIR / "postgres" / "Dockerfile").read_text()
    for package in ("postgresql-15-wal2json", "postgresql-15-postgis-3", "postgresql-15-pgaudit", "postgresql-15-cron"):
        assert package in dockerfile
    # pgvector from Debian 13's source package, built for PostgreSQL 15 without -march=native, in a build stage
    # on the same base as the image (base_suite reads the final, unnamed FROM)
    assert "deb-src $mirror trixie main" in dockerfile and "apt-get source pgvector" in dockerfile
    assert "postgresql-server-dev-15" in dockerfile and 'OPTFLAGS=""' in dockerfile
    assert "COPY --from=pgvector /out/usr/ /usr/" in dockerfile
    assert imagebuild.base_suite("postgres") == "bookworm"
    entrypoint = (imagebuild.IMAGES_DIR / "postgres" / "entrypoint.sh").read_text()
    assert "shared_preload_libraries = 'pg_stat_statements, pgaudit, pg_cron'" in entrypoint
    assert "cron.database_name = 'postgres'" in entrypoint
    # supabase_admin's password is read by psql from its environment, never put on a command line
    assert "\\getenv pw PW" in entrypoint and "PASSWORD :'pw'" in entrypoint
