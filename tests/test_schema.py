import ast
import importlib
import pathlib

import pytest

from ups.pipeline import stage_class
from ups.schema import STAGE_INPUTS, STAGE_RUN_KEYS, STAGE_SPECS, STAGES, TTCConfig, UpsConfig
from ups.ttc.rewards import REWARDS

SECTIONS = {"data", "autoencoder", "operator", "diffusion", "consistency", "fno", "ttc", "eval"}


def test_the_registry_derives_the_stage_list_inputs_and_defaults():
    assert STAGES == ("autoencoder", "operator", "diffusion", "consistency", "fno")
    assert STAGE_INPUTS["diffusion"] == ("autoencoder", "operator", "diffusion")
    assert STAGE_INPUTS["fno"] == ("fno",)
    assert all(spec.reads[-1] == spec.name for spec in STAGE_SPECS)  # its own section last
    assert UpsConfig().stages == ["autoencoder", "operator", "diffusion", "consistency"]


@pytest.mark.parametrize("name", STAGES)
def test_the_registry_names_the_class_that_trains_each_stage(name):
    assert stage_class(name).name == name


# The shared toolbox of every stage; its one section read is latent_model's autoencoder shape,
# which is counted where a stage calls latent_model.
CONTEXT = "ups.stages.context"


def _sections_read(module_name: str, seen: set[str]) -> set[str]:
    """Config sections the module reads as ``<x>.cfg.<section>`` or ``cfg.<section>``, with
    those of the ``ups.stages`` modules it imports."""
    if module_name in seen or module_name == CONTEXT:
        return set()
    seen.add(module_name)
    tree = ast.parse(pathlib.Path(importlib.import_module(module_name).__file__).read_text())
    read = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in SECTIONS:
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "cfg") or (
                isinstance(owner, ast.Attribute) and owner.attr == "cfg"
            ):
                read.add(node.attr)
        if isinstance(node, ast.Attribute) and node.attr == "latent_model":
            read.add("autoencoder")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ups.stages."):
            read |= _sections_read(node.module, seen)
    return read


@pytest.mark.parametrize("spec", STAGE_SPECS, ids=lambda s: s.name)
def test_a_stage_reads_only_the_sections_the_registry_grants(spec):
    module = spec.stage_class.partition(":")[0]
    granted = set(STAGE_RUN_KEYS) | set(spec.reads)
    assert _sections_read(module, set()) <= granted


def test_the_context_reads_only_the_autoencoder_section():
    tree = ast.parse(pathlib.Path(importlib.import_module(CONTEXT).__file__).read_text())
    read = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in SECTIONS
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "cfg"
    }
    assert read == {"autoencoder"}


def test_ttc_judges_every_reward_but_the_costly_fine_step_by_default():
    assert TTCConfig().diagnostic_rewards == [name for name in REWARDS if name != "fine_step"]
