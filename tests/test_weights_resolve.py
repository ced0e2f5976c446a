"""Resolution order (explicit > weights dir > cache > hub), offline behaviour, temperature source; network mocked."""

from __future__ import annotations

import shutil

import fsspec
import pytest
import torch

from zh_steve.errors import CheckpointError, WeightsNotFoundError
from zh_steve import hub
from zh_steve.weights.resolve import (LAYOUT_HUB, LAYOUT_OFFICIAL, LAYOUT_TEXT_BLOCK, WeightsSpec,
                                      default_cache_dir, resolve_weights)
from tiny_weights import tiny_weights, two_x_model_bytes, write_hub_dir, write_official_dir

REPO = "org/tiny-steve"


@pytest.fixture(scope="module")
def tw():
    return tiny_weights(seed=11)


@pytest.fixture(scope="module")
def remote(tw, tmp_path_factory):
    """A fake hub repo: the tiny MineStudio files on local disk."""
    return write_hub_dir(tmp_path_factory.mktemp("remote"), tw).parent


class FakeHub:
    def __init__(self, remote):
        self.remote, self.calls = remote, []

    def install(self, monkeypatch):
        monkeypatch.setattr(hub, "repo_files", self.repo_files)
        monkeypatch.setattr(hub, "download_file", self.download_file)
        monkeypatch.setattr(hub, "cached_file", lambda *a, **k: None)
        mem = fsspec.filesystem("memory")
        mem.pipe(f"/{REPO}@c0ffee/model.safetensors", (self.remote / "model.safetensors").read_bytes())
        monkeypatch.setattr(hub, "hf_filesystem", lambda: self.calls.append("fs") or mem)
        return self

    def repo_files(self, repo_id, revision=None):
        self.calls.append("info")
        files = {p.name: hub.RemoteFile(p.name, p.stat().st_size, None, None) for p in self.remote.iterdir()}
        return "c0ffee", files

    def download_file(self, repo_id, filename, local_dir, revision=None):
        self.calls.append(f"download:{filename}")
        local_dir.mkdir(parents=True, exist_ok=True)
        return shutil.copy(self.remote / filename, local_dir / filename)


@pytest.fixture
def fake(monkeypatch, remote, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("ZS_NO_DOWNLOAD", raising=False)
    monkeypatch.setenv("ZS_WEIGHTS_CACHE", str(tmp_path / "cache"))
    return FakeHub(remote).install(monkeypatch)


def spec(tw, **kw):
    kw.setdefault("expected", tw.expectations())
    kw.setdefault("expected_behaviour", tw.behaviour)
    kw.setdefault("repo_id", REPO)
    kw.setdefault("notify", lambda m: None)
    return WeightsSpec(**kw)


def test_weights_dir_official_layout(tw, fake, tmp_path):
    write_official_dir(tmp_path / "w", tw)
    r = resolve_weights(spec(tw, weights_dir=tmp_path / "w"))
    assert {c: (s.layout, s.origin) for c, s in r.sources.items()} == {
        c: (LAYOUT_OFFICIAL, "weights_dir") for c in ("policy", "prior", "mineclip_text")}
    assert torch.equal(r.policy_state_dict()["net.mineclip_embed_linear.weight"],
                       tw.policy["net.mineclip_embed_linear.weight"])
    s = r.policy_kwargs()
    assert (s.temperature, s.temperature_source) == (tw.temperature, "2x.model")
    assert fake.calls == []


def test_flat_official_dir_is_accepted(tw, fake, tmp_path):
    write_official_dir(tmp_path / "w", tw, flat=True)
    r = resolve_weights(spec(tw, weights_dir=tmp_path / "w"))
    assert all(s.path.parent == tmp_path / "w" for s in r.sources.values())


def test_explicit_beats_weights_dir_beats_cache(tw, fake, tmp_path, monkeypatch):
    write_official_dir(tmp_path / "w", tw)
    write_hub_dir(default_cache_dir() / "minestudio", tw)
    explicit_prior = tmp_path / "my_prior.pt"
    torch.save({k: v + 1 for k, v in tw.prior.items()}, explicit_prior)
    r = resolve_weights(spec(tw, weights_dir=tmp_path / "w", prior=explicit_prior))
    assert r.sources["prior"].origin == "explicit" and r.sources["prior"].path == explicit_prior
    assert r.sources["policy"].origin == "weights_dir"
    assert torch.equal(r.prior_state_dict()["decoder.0.bias"], tw.prior["decoder.0.bias"] + 1)
    r2 = resolve_weights(spec(tw))
    assert {s.origin for s in r2.sources.values()} == {"cache"}
    assert {s.layout for s in r2.sources.values()} == {LAYOUT_HUB}
    assert fake.calls == []


def test_hub_download_when_nothing_local(tw, fake):
    notes = []
    r = resolve_weights(spec(tw, notify=notes.append))
    assert {(s.layout, s.origin) for s in r.sources.values()} == {(LAYOUT_HUB, "download")}
    assert "download:model.safetensors" in fake.calls and "download:config.json" in fake.calls
    assert any("GB" in n and "ZS_NO_DOWNLOAD" in n for n in notes)  # size announced before the download
    s = r.policy_kwargs()
    assert s.temperature_source == "default-official-2.0" and s.temperature == 2.0
    assert s.kwargs_source.endswith("config.json")
    # second run: found in the cache, no network
    fake.calls.clear()
    r2 = resolve_weights(spec(tw))
    assert {s.origin for s in r2.sources.values()} == {"cache"} and fake.calls == []


def test_text_only_need_uses_ranged_fetch(tw, fake):
    notes = []
    r = resolve_weights(spec(tw, need=("mineclip_text",), notify=notes.append))
    src = r.sources["mineclip_text"]
    assert (src.layout, src.origin) == (LAYOUT_TEXT_BLOCK, "download")
    assert "fs" in fake.calls and not any(c.startswith("download:") for c in fake.calls)
    assert any("MiB" in n for n in notes)
    got = r.mineclip_text_state_dict()
    assert all(torch.equal(got[k], tw.mineclip_text[k]) for k in tw.mineclip_text)
    assert r.settings is None


def test_offline_never_touches_network_and_names_what_is_missing(tw, fake, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    write_official_dir(tmp_path / "w", tw)
    (tmp_path / "w" / "steve1" / "steve1_prior.pt").unlink()
    with pytest.raises(WeightsNotFoundError) as e:
        resolve_weights(spec(tw, weights_dir=tmp_path / "w"))
    msg = str(e.value)
    assert "prior" in msg and "HF_HUB_OFFLINE" in msg and "1OdX5wiybK8jALVfP5_dEo0CWm9BQbDES" in msg
    assert "policy," not in msg.split("\n")[0]  # only the prior is missing
    assert fake.calls == []
    # ... and works offline once everything is local
    write_official_dir(tmp_path / "w", tw)
    assert resolve_weights(spec(tw, weights_dir=tmp_path / "w")).sources["prior"].layout == LAYOUT_OFFICIAL


@pytest.mark.parametrize("how", ["flag", "env"])
def test_downloads_can_be_refused(tw, fake, monkeypatch, how):
    kw = {}
    if how == "flag":
        kw["allow_download"] = False
    else:
        monkeypatch.setenv("ZS_NO_DOWNLOAD", "1")
    with pytest.raises(WeightsNotFoundError, match="Downloads are switched off"):
        resolve_weights(spec(tw, **kw))
    assert fake.calls == []


def test_temperature_sources(tw, fake, tmp_path):
    hub_dir = tmp_path / "h"
    write_hub_dir(hub_dir, tw)
    r = resolve_weights(spec(tw, hub_file=hub_dir / "model.safetensors", temperature=1.5))
    assert (r.policy_kwargs().temperature, r.policy_kwargs().temperature_source) == (1.5, "config")
    (hub_dir / "vpt").mkdir()
    (hub_dir / "vpt" / "2x.model").write_bytes(two_x_model_bytes(tw.policy_kwargs, 3.0))
    r = resolve_weights(spec(tw, weights_dir=hub_dir))
    assert (r.policy_kwargs().temperature, r.policy_kwargs().temperature_source) == (3.0, "2x.model")
    (hub_dir / "vpt" / "2x.model").write_bytes(two_x_model_bytes(tw.policy_kwargs, None))
    r = resolve_weights(spec(tw, weights_dir=hub_dir))
    assert r.policy_kwargs().temperature_source == "default-official-2.0"
    assert r.describe()["policy_settings"]["temperature_source"] == "default-official-2.0"
    cfg = tmp_path / "kw.yaml"
    cfg.write_text("policy_kwargs: {hidsize: 64}\npi_head_kwargs: {temperature: 0.5}\n")
    r = resolve_weights(spec(tw, weights_dir=hub_dir, policy_kwargs=cfg))
    assert r.policy_kwargs().temperature == 0.5 and r.policy_kwargs().kwargs_source == str(cfg)


def test_hub_config_with_other_behaviour_fails_at_resolution(tw, fake, tmp_path):
    write_hub_dir(tmp_path / "h", tw)
    with pytest.raises(CheckpointError, match="timesteps"):
        resolve_weights(spec(tw, weights_dir=tmp_path / "h", expected_behaviour=None))


def test_official_file_checked_strictly_against_manifest(tw, fake, tmp_path):
    paths = write_official_dir(tmp_path / "w", tw)
    vpt_only = {k: v for k, v in tw.policy.items() if "mineclip_embed_linear" not in k}
    torch.save({"module.policy." + k: v for k, v in vpt_only.items()}, paths["steve1.weights"])
    r = resolve_weights(spec(tw, weights_dir=tmp_path / "w"))
    with pytest.raises(CheckpointError, match="net.mineclip_embed_linear.weight"):
        r.policy_state_dict()


def test_text_block_cannot_provide_the_policy(tw, fake, tmp_path):
    r = resolve_weights(spec(tw, need=("mineclip_text",)))
    with pytest.raises(CheckpointError, match="only the MineCLIP text tower"):
        resolve_weights(spec(tw, policy=r.sources["mineclip_text"].path))


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ZS_WEIGHTS_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ZS_WEIGHTS_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "zh-steve", "weights")


def test_local_snapshot_prefers_a_downloaded_copy_in_the_zh_steve_cache(tmp_path, monkeypatch):
    """download_weights saves Chinese-CLIP / Marian under the cache; hub ids must find them offline."""
    from zh_steve.weights import local_snapshot

    monkeypatch.setenv("ZS_WEIGHTS_CACHE", str(tmp_path / "cache"))
    assert local_snapshot("Helsinki-NLP/opus-mt-zh-en") == "Helsinki-NLP/opus-mt-zh-en"  # not downloaded
    snap = tmp_path / "cache" / "opus-mt-zh-en"
    snap.mkdir(parents=True)
    assert local_snapshot("Helsinki-NLP/opus-mt-zh-en") == "Helsinki-NLP/opus-mt-zh-en"  # incomplete: no config
    (snap / "config.json").write_text("{}")
    assert local_snapshot("Helsinki-NLP/opus-mt-zh-en") == str(snap)
    local = tmp_path / "my" / "model"
    local.mkdir(parents=True)
    assert local_snapshot(str(local)) == str(local)  # an existing local path is used as given


def test_unreachable_hub_is_one_clear_error_not_a_traceback(tmp_path, monkeypatch):
    """No route to the hub (DNS failure, refused connection …) → WeightsNotFoundError saying what to do."""
    import zh_steve.hub as hub
    from zh_steve.errors import WeightsNotFoundError
    from zh_steve.weights import WeightsSpec, resolve_weights

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("ZS_NO_DOWNLOAD", raising=False)
    monkeypatch.setattr(hub, "cached_file", lambda *a, **k: None)

    class FakeApi:
        def model_info(self, *a, **k):
            raise ConnectionError("[Errno -2] Name or service not known")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    with pytest.raises(WeightsNotFoundError, match="could not fetch .*Name or service not known.*download_weights"):
        resolve_weights(WeightsSpec(cache_dir=tmp_path, need=("mineclip_text",), notify=lambda m: None))
