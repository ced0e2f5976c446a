"""Full-size manifest checks (no tensors): the 490 hub keys map exactly onto the official files' keys."""

from __future__ import annotations

import torch

from zh_steve.checkpoint import load_manifest, manifest_shapes
from zh_steve.weights.expected import Expectations, hub_component, payload_bytes, split_hub_shapes
from publish import hub_state_dict_from_official
from zh_steve.weights.ranged import locate_block


def test_hub_keys_split_onto_official_key_spaces_exactly():
    hub = manifest_shapes("minestudio_steve1_safetensors")
    parts = split_hub_shapes(hub)
    assert parts["policy"] == manifest_shapes("steve1_policy")
    assert parts["prior"] == manifest_shapes("steve1_prior")
    text = {k[len("model.clip_model.text_model."):]: v
            for k, v in manifest_shapes("mineclip", "model.clip_model.text_model.").items()}
    assert parts["mineclip_text"] == text
    sizes = {c: len(v) for c, v in parts.items()}
    ignored = [k for k in hub if hub_component(k) is None]
    assert sum(sizes.values()) + len(ignored) == len(hub)
    assert all(k.startswith("mineclip.") and not k.startswith("mineclip.clip_model.text_model.") for k in ignored)


def test_mapping_agrees_with_official_names_recorded_in_manifest():
    keys = load_manifest("minestudio_steve1_safetensors")["keys"]
    files = {"policy": "steve1.weights", "prior": "steve1_prior.pt"}
    for hub_key, info in keys.items():
        hit = hub_component(hub_key)
        official = {tuple(o) for o in info["official"]}
        if hit is None:
            continue
        comp, key = hit
        if comp == "mineclip_text":
            assert ("attn.pth['state_dict']", "model.clip_model.text_model." + key) in official
        else:
            assert (files[comp], key) in official, hub_key


def test_official_to_hub_rules_give_exactly_the_490_keys():
    meta = lambda s: torch.empty(s, device="meta")  # noqa: E731 - shape-only tensors
    policy = {k: meta(s) for k, s in manifest_shapes("steve1_policy").items()}
    prior = {k: meta(s) for k, s in manifest_shapes("steve1_prior").items()}
    attn = {k: meta(s) for k, s in manifest_shapes("mineclip").items()}
    hub = hub_state_dict_from_official(policy, prior, attn)
    assert {k: tuple(v.shape) for k, v in hub.items()} == manifest_shapes("minestudio_steve1_safetensors")


def test_text_tower_byte_range_from_manifest_header():
    m = load_manifest("minestudio_steve1_safetensors")
    header = {k: {"dtype": v["dtype"], "shape": v["shape"], "data_offsets": v["data_offsets"]}
              for k, v in m["keys"].items()}
    block = locate_block(header, m["safetensors_layout"]["header_length_bytes"])
    group = m["groups"]["mineclip.clip_model.text_model (text tower)"]
    assert [block.start, block.end] == group["data_byte_range"]
    assert len(block.entries) == group["n_keys"]
    assert block.n_bytes == payload_bytes(Expectations().hub_text_shapes()) == 4 * group["n_params"]
    assert block.file_range[0] == 8 + m["safetensors_layout"]["header_length_bytes"] + group["data_byte_range"][0]
