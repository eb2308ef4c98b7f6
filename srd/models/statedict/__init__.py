"""Read a community model's weights (PyTorch .pth/.ckpt checkpoints, .safetensors) into one flat
`{key: float32 array}` state dict, without PyTorch and without running code from the file."""

from srd.models.statedict.reader import StateDict, canonical_state_dict, read_state_dict
from srd.models.statedict.torch_pickle import load_torch_checkpoint

__all__ = ["StateDict", "canonical_state_dict", "load_torch_checkpoint", "read_state_dict"]
