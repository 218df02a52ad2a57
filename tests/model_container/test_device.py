"""Device choice: params.device x GPU presence x library build; threads from the contract."""

from __future__ import annotations

import importlib.metadata as md

import pytest

from avm import model
from avm.config import ConfigError


def test_cuda_visible_devices_hides_gpu() -> None:
    assert model.gpu_present({"CUDA_VISIBLE_DEVICES": "-1"}) is False
    assert model.gpu_present({"CUDA_VISIBLE_DEVICES": ""}) is False


def test_no_nvidia_smi_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("avm.model.shutil.which", lambda _name: None)  # the shutil avm.model calls
    assert model.gpu_present({}) is False


def test_choose_device_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    assert model.choose_device("lightgbm", "auto", "gpu", gpu=True).use == "cpu"
    assert model.choose_device("xgboost", "cpu", "gpu", gpu=True).use == "cpu"
    assert model.choose_device("xgboost", "auto", "cpu", gpu=False).use == "cpu"
    with pytest.raises(ConfigError, match="needs library=xgboost"):
        model.choose_device("lightgbm", "cuda", "gpu", gpu=True)
    with pytest.raises(ConfigError, match="no GPU found"):
        model.choose_device("xgboost", "cuda", "cpu", gpu=False)
    # A GPU host with the CPU-only wheel (xgboost-cpu): auto falls back, cuda is an error.
    monkeypatch.setattr(model, "xgboost_has_cuda", lambda: False)
    assert model.choose_device("xgboost", "auto", "gpu", gpu=True).use == "cpu"
    with pytest.raises(ConfigError, match="has no CUDA"):
        model.choose_device("xgboost", "cuda", "gpu", gpu=True)
    # A GPU host with the CUDA wheel (the GPU image): auto and cuda use it.
    monkeypatch.setattr(model, "xgboost_has_cuda", lambda: True)
    assert model.choose_device("xgboost", "auto", "gpu", gpu=True).use == "cuda"
    assert model.choose_device("xgboost", "cuda", "gpu", gpu=True).use == "cuda"


def test_local_env_has_exactly_one_xgboost_flavour() -> None:
    installed = set()
    for dist in ("xgboost", "xgboost-cpu"):
        try:
            md.version(dist)
            installed.add(dist)
        except md.PackageNotFoundError:
            pass
    assert installed == {"xgboost-cpu"}
    assert model.xgboost_has_cuda() is False
