"""Reading model weights without PyTorch: both checkpoint containers, safetensors, and hostile or damaged
files, each a clear ModelError (exit 65 from `srd upscale`, refused by check-config) and never code run."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.daemon import SRD_COMMAND
from support.spandrel_ref import save_pth, save_safetensors

from srd.cli.check_config import check_config_command
from srd.errors import ModelError
from srd.models.statedict import load_torch_checkpoint, read_state_dict

torch = pytest.importorskip("torch")


def _tensors() -> OrderedDict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    return OrderedDict(
        w=torch.randn(4, 3, 3, 3, generator=gen),
        half=torch.randn(5, generator=gen).half(),
        bf16=torch.randn(2, 3, generator=gen).bfloat16(),
        transposed=torch.randn(4, 3, generator=gen).t(),
        view=torch.arange(10.0)[2:7],
        double=torch.randn(3, generator=gen).double(),
    )


@pytest.mark.parametrize("container", ["zip", "legacy", "safetensors"])
def test_every_container_reads_every_tensor_exactly(tmp_path: Path, container: str) -> None:
    """Zip and pre-1.6 checkpoints and safetensors files give each tensor's values, strides, offsets and
    half / bfloat16 / double types included, as float32."""
    tensors = _tensors()
    if container == "safetensors":
        path = save_safetensors(dict(tensors), tmp_path / "m.safetensors")
    else:
        path = save_pth({"params_ema": tensors, "iter": 7}, tmp_path / "m.pth", legacy=container == "legacy")
    state = read_state_dict(path)
    assert set(state) == set(tensors)
    for key, tensor in tensors.items():
        assert state[key].dtype == np.float32
        np.testing.assert_array_equal(state[key], tensor.float().numpy())


def test_parameters_and_numpy_scalars_in_a_checkpoint(tmp_path: Path) -> None:
    """nn.Parameter tensors and the numpy scalars training scripts store (best PSNR) load."""
    weight = torch.nn.Parameter(torch.ones(2, 2))
    path = save_pth({"state_dict": {"a": weight}, "best": np.float64(31.5)}, tmp_path / "p.pth")
    checkpoint = load_torch_checkpoint(path.read_bytes())
    assert checkpoint["best"] == 31.5
    np.testing.assert_array_equal(checkpoint["state_dict"]["a"], np.ones((2, 2), np.float32))


class _Exploit:
    """An object whose unpickling would run a shell command (what a hostile .pth carries)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [False, True])
def test_a_hostile_pickle_is_refused_without_running_it(tmp_path: Path, legacy: bool) -> None:
    """A checkpoint whose pickle names os.system is a ModelError naming that global; nothing runs."""
    marker = tmp_path / "pwned"
    path = save_pth({"weight": torch.zeros(1), "x": _Exploit(marker)}, tmp_path / "evil.pth", legacy=legacy)
    with pytest.raises(ModelError, match=r"(posix|os)\.system.*refuses"):
        read_state_dict(path)
    assert not marker.exists()


def test_a_hostile_model_is_exit_65_and_refused_by_check_config(tmp_path: Path) -> None:
    """`srd upscale -m evil.pth` exits 65 with the reason, and a config naming it fails check-config."""
    marker = tmp_path / "pwned"
    evil = save_pth({"x": _Exploit(marker)}, tmp_path / "evil.pth")
    image = tmp_path / "in.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    result = subprocess.run(
        [*SRD_COMMAND, "upscale", str(image), "-m", str(evil), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 65, result.stderr
    assert "system" in result.stderr and "refuses" in result.stderr
    config = tmp_path / "srd.yaml"
    config.write_text(
        f"inbox: {tmp_path}/in\noutbox: {tmp_path}/o\nerrors: {tmp_path}/e\nwork: {tmp_path}/w\n"
        f"archive: delete\nmodel: {{name: {evil}}}\n"
    )
    for name in ("in", "o", "e", "w"):
        (tmp_path / name).mkdir()
    assert check_config_command(config) == 78
    assert not marker.exists()


def _tensor_pickle(size: int, numel: int, data: bytes) -> bytes:
    """A zip checkpoint, written by hand, holding one float tensor of `size` elements over a storage that
    claims `numel` elements and holds `data`."""

    class StorageRef:
        pass

    ref = StorageRef()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            return ("storage", torch.FloatStorage, "0", "cpu", numel) if obj is ref else None

    class Tensor:
        def __reduce__(self) -> Any:
            return (torch._utils._rebuild_tensor_v2, (ref, 0, (size,), (1,), False, OrderedDict()))

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"w": Tensor()})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/data/0", data)
    return out.getvalue()


def test_a_tensor_reaching_past_its_storage_is_refused() -> None:
    """A tensor whose size reads past its storage's elements is refused (never read out of bounds)."""
    assert load_torch_checkpoint(_tensor_pickle(4, 4, bytes(16)))["w"].shape == (4,)
    with pytest.raises(ModelError, match="lies about its sizes"):
        load_torch_checkpoint(_tensor_pickle(1000, 4, bytes(16)))
    with pytest.raises(ModelError, match="fewer than its 1000 elements"):
        load_torch_checkpoint(_tensor_pickle(1000, 1000, bytes(16)))


@pytest.mark.parametrize("legacy", [False, True])
def test_truncated_checkpoints_are_clear_errors(tmp_path: Path, legacy: bool) -> None:
    """A checkpoint cut short anywhere is a ModelError, not a crash or a half-read model."""
    path = save_pth({"w": torch.randn(64, 64)}, tmp_path / "m.pth", legacy=legacy)
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 7):
        (tmp_path / "cut.pth").write_bytes(data[:cut])
        with pytest.raises(ModelError):
            read_state_dict(tmp_path / "cut.pth")


def test_a_safetensors_header_lying_about_sizes_is_refused(tmp_path: Path) -> None:
    """A safetensors header whose offsets reach past the data (or disagree with the shape) is refused."""
    header = {"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}
    text = json.dumps(header).encode()
    path = tmp_path / "lie.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(16))
    with pytest.raises(ModelError, match="safetensors"):
        read_state_dict(path)
    header = {"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 16]}}
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(16))
    with pytest.raises(ModelError):
        read_state_dict(path)
    path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(ModelError):
        read_state_dict(path)


def test_files_that_are_not_checkpoints(tmp_path: Path) -> None:
    """Text, an empty file and a zip that is not a checkpoint, named .pth, are ModelErrors."""
    for name, data in (("text.pth", b"hello world\n"), ("empty.pth", b""), ("png.ckpt", b"\x89PNG\r\n")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelError):
            read_state_dict(tmp_path / name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    (tmp_path / "zip.pth").write_bytes(out.getvalue())
    with pytest.raises(ModelError, match=r"data\.pkl"):
        read_state_dict(tmp_path / "zip.pth")


def test_a_checkpoint_without_tensors_is_a_clear_error(tmp_path: Path) -> None:
    """A checkpoint of plain values (an optimizer dump) says it holds no state dict."""
    path = save_pth({"epoch": 3, "lr": 0.1}, tmp_path / "opt.pth")
    with pytest.raises(ModelError, match="no state dict"):
        read_state_dict(path)
