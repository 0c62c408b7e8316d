"""SemFi's Mixture-of-LoRA (paper eq. 2): one universal LoRA plus one expert per frame-count scale.

dW = dW_U + dW_{E_s}, s = argmin_{s in S} |N - s|. The adapters are peft LoRA layers injected into the
Wan DiT once; switching experts between clips only changes which adapters are active (no reload).

Which linear layers carry LoRA: in every DiT block, the self-attention and cross-attention projections
(to_q, to_k, to_v, to_out.0), the cross-attention's image-branch key/value (add_k_proj, add_v_proj), and the
feed-forward (ffn.net.0.proj, ffn.net.2). Attention + FFN is the usual Wan LoRA target set (DiffSynth-Studio's
default q,k,v,o,ffn.0,ffn.2); the image key/value projections are added because SemFi changes what the image
tokens mean (a sum of two frames' CLIP features), and they are the only layers that read those tokens.
Embedders, norms, modulation and the output head stay frozen and unadapted.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sfi_core.constants import FRAME_COUNTS

UNIVERSAL = "universal"
CONFIG_NAME = "mol_config.json"
# diffusers' LoRA file layout: keys under the pipeline component's name, the LoraConfig as JSON in the
# safetensors metadata (diffusers.loaders.lora_base.LORA_ADAPTER_METADATA_KEY), keys again prefixed.
COMPONENT_PREFIX = "transformer."
METADATA_KEY = "lora_adapter_metadata"
DEFAULT_TARGET_MODULES = (
    r"blocks\.\d+\.(attn1\.(to_q|to_k|to_v|to_out\.0)"
    r"|attn2\.(to_q|to_k|to_v|to_out\.0|add_k_proj|add_v_proj)"
    r"|ffn\.net\.(0\.proj|2))"
)


def expert_name(scale: int) -> str:
    return f"expert_{scale}"


def merged_name(scale: int) -> str:
    """The single LoRA equal to universal + expert_<scale> (for tools that load one adapter)."""
    return f"merged_{scale}"


def route(num_frames: int, scales: tuple[int, ...] = FRAME_COUNTS) -> int:
    """The expert scale for a generated length: argmin |M - s|; a tie goes to the larger s.

    Call it with the number of frames the DiT generates (semfi.pipeline.generated_length), never with
    the N asked for: for N outside S the model generates M != N frames (N = 6 -> 21, N = 12 -> 45), and
    an expert runs best on the latent length it was trained on. A tie (M = 13 between 9 and 17, M = 49
    between 33 and 65) goes to the larger scale.
    """
    if num_frames < 1:
        raise ValueError(f"frame count must be positive, got {num_frames}")
    if not scales:
        raise ValueError("the Mixture-of-LoRA has no expert scales")
    return min(scales, key=lambda s: (abs(num_frames - s), -s))


@dataclass
class MoLConfig:
    rank: int = 16
    alpha: float = 16.0
    dropout: float = 0.0
    scales: tuple[int, ...] = FRAME_COUNTS
    target_modules: str = DEFAULT_TARGET_MODULES
    base_model: str = ""  # the backbone the adapters were trained on (recorded, checked by the user)
    extra: dict = field(default_factory=dict)

    @property
    def adapter_names(self) -> list[str]:
        return [UNIVERSAL] + [expert_name(s) for s in self.scales]

    def lora_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.target_modules,
            init_lora_weights=True,
        )

    def save(self, folder: Path) -> None:
        (folder / CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2))

    def diffusers_metadata(self, rank_factor: int = 1) -> dict[str, str]:
        """safetensors metadata that diffusers' load_lora_weights turns into this LoraConfig."""
        config = {
            "r": self.rank * rank_factor,
            # A rank-k*r concatenation keeps the scaling alpha/r only with alpha scaled alike.
            "lora_alpha": self.alpha * rank_factor,
            "lora_dropout": self.dropout,
            "target_modules": self.target_modules,
            "init_lora_weights": True,
        }
        packed = {COMPONENT_PREFIX + k: v for k, v in config.items()}
        return {"format": "pt", METADATA_KEY: json.dumps(packed, sort_keys=True)}

    @classmethod
    def load(cls, folder: Path) -> MoLConfig:
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: not a SemFi adapter folder (train one with `sfi-bench train`)"
            )
        data = json.loads(path.read_text())
        data["scales"] = tuple(data["scales"])
        return cls(**data)


class MixtureOfLoRA:
    """Owns the 7 adapters injected into one Wan transformer and which two of them are active."""

    def __init__(self, transformer, config: MoLConfig) -> None:
        self.transformer = transformer
        self.config = config
        self.active_scale: int | None = None

    @classmethod
    def attach(cls, transformer, config: MoLConfig | None = None) -> MixtureOfLoRA:
        """Inject fresh adapters (B = 0, so the model starts equal to the base)."""
        config = config or MoLConfig()
        existing = set(getattr(transformer, "peft_config", {}) or {})
        clash = existing & set(config.adapter_names)
        if clash:
            raise ValueError(f"the transformer already has adapters {sorted(clash)}; call remove() first")
        with warnings.catch_warnings():
            # peft warns on every adapter after the first; seven adapters on one model is the design.
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            for name in config.adapter_names:
                transformer.add_adapter(config.lora_config(), adapter_name=name)
        mol = cls(transformer, config)
        mol.upcast()
        mol.activate(config.scales[0])
        return mol

    @classmethod
    def load(cls, transformer, folder: Path) -> MixtureOfLoRA:
        """Attach adapters and fill them from `folder` (one diffusers-format safetensors file per adapter)."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        folder = Path(folder)
        config = MoLConfig.load(folder)
        missing = [n for n in config.adapter_names if not (folder / f"{n}.safetensors").is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} lacks adapter files {[m + '.safetensors' for m in missing]}")
        mol = cls.attach(transformer, config)
        for name in config.adapter_names:
            state = {
                k.removeprefix(COMPONENT_PREFIX): v
                for k, v in load_file(folder / f"{name}.safetensors").items()
            }
            result = set_peft_model_state_dict(transformer, state, adapter_name=name)
            unexpected = getattr(result, "unexpected_keys", [])
            if unexpected:
                raise ValueError(
                    f"{folder / name}.safetensors has keys the transformer lacks: {unexpected[:3]}"
                )
        mol.upcast()
        return mol

    def adapter_state(self, name: str) -> dict:
        """One adapter's LoRA tensors, keyed as diffusers' Wan pipeline expects (`transformer.` prefix)."""
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(self.transformer, adapter_name=name)
        # Under FSDP2 a parameter is a sharded DTensor: gather the whole tensor before writing it.
        state = {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in state.items()}
        return {COMPONENT_PREFIX + k: v.detach().float().cpu().contiguous() for k, v in state.items()}

    def merged_state(self, scale: int) -> dict:
        """universal + expert_<scale> as one rank-2r LoRA: B A = [B_U B_E] [A_U; A_E] (same alpha/r scaling)."""
        import torch

        universal, expert = self.adapter_state(UNIVERSAL), self.adapter_state(expert_name(scale))
        return {
            key: torch.cat([universal[key], expert[key]], dim=0 if ".lora_A." in key else 1).contiguous()
            for key in universal
        }

    def save(self, folder: Path, write: bool = True, merged: bool = True) -> Path:
        """Every adapter plus one merged file per scale (unless `merged` is False: training checkpoints),
        loadable by `pipe.load_lora_weights(folder, weight_name="<name>.safetensors", adapter_name=...)`, and
        mol_config.json for MixtureOfLoRA.load.

        Under FSDP every rank must call this (gathering a sharded tensor is collective); only the rank with
        `write` writes the files.
        """
        from safetensors.torch import save_file

        files = {
            name: (self.adapter_state(name), self.config.diffusers_metadata())
            for name in self.config.adapter_names
        }
        if merged:
            metadata = self.config.diffusers_metadata(rank_factor=2)
            files |= {merged_name(s): (self.merged_state(s), metadata) for s in self.config.scales}
        folder = Path(folder)
        if write:
            folder.mkdir(parents=True, exist_ok=True)
            for name, (state, metadata) in files.items():
                save_file(state, folder / f"{name}.safetensors", metadata=metadata)
            self.config.save(folder)
        return folder

    def upcast(self) -> None:
        """LoRA weights in float32 whatever the base dtype: peft then casts the layer input to float32 and
        runs the low-rank product in float32 (the base layer keeps its bf16 matmul)."""
        for param in self.parameters():
            param.data = param.data.float()

    def activate(self, num_frames: int) -> int:
        """Make universal + the routed expert the active adapters; returns the expert's scale."""
        scale = route(num_frames, self.config.scales)
        if scale != self.active_scale:
            self.transformer.set_adapters([UNIVERSAL, expert_name(scale)])
            self.active_scale = scale
        return scale

    def active_adapters(self) -> list[str]:
        from peft.tuners.tuners_utils import BaseTunerLayer

        for module in self.transformer.modules():
            if isinstance(module, BaseTunerLayer):
                return list(module.active_adapters)
        return []

    def disable(self) -> None:
        """Run the base model (the adapters stay loaded)."""
        self.transformer.disable_lora()

    def enable(self) -> None:
        self.transformer.enable_lora()

    def parameters(self, adapter: str | None = None) -> list:
        """LoRA parameters, of one adapter or of all."""
        names = [adapter] if adapter else self.config.adapter_names
        return [
            p
            for n, p in self.transformer.named_parameters()
            if "lora_" in n and any(f".{a}." in n or n.endswith(f".{a}") for a in names)
        ]

    def named_parameters(self) -> dict[str, object]:
        return {n: p for n, p in self.transformer.named_parameters() if "lora_" in n}

    def remove(self) -> None:
        """Take every LoRA layer out; the transformer is the base model again."""
        self.transformer.unload_lora()
        self.active_scale = None
