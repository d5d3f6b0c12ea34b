"""FLUX.1-Kontext pipelines with random weights, built offline from configs.

``tiny`` is a few hundred kB: tests and ``bench/flux.py --random tiny`` run it on a CPU in
milliseconds. ``full`` has the real FLUX.1-Kontext-dev architecture (12B transformer, T5-XXL
encoder, CLIP-L, 16-channel VAE) with random weights: the memory and speed of the real model
without downloading it. Tokenizers are built in-process (no hub access); their vocabularies are
small, which changes nothing about the cost of the models.

Imports torch, diffusers and transformers: never import this from a light job entry point.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxKontextPipeline,
    FluxTransformer2DModel,
)
from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel
from transformers import T5TokenizerFast as T5Tokenizer

Size = Literal["tiny", "full"]

CONFIGS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "transformer": {
            "patch_size": 1,
            "in_channels": 64,
            "num_layers": 1,
            "num_single_layers": 1,
            "attention_head_dim": 16,
            "num_attention_heads": 2,
            "joint_attention_dim": 32,
            "pooled_projection_dim": 32,
            "guidance_embeds": True,
            "axes_dims_rope": [4, 4, 8],
        },
        "clip": {
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "projection_dim": 32,
            "vocab_size": 1000,
            "max_position_embeddings": 77,
            "hidden_act": "gelu",
        },
        "t5": {
            "d_model": 32,
            "d_ff": 37,
            "d_kv": 8,
            "num_heads": 4,
            "num_layers": 2,
            "vocab_size": 1000,
            "feed_forward_proj": "gated-gelu",
        },
        "vae": {
            "block_out_channels": [16, 16, 16, 16],
            "layers_per_block": 1,
            "norm_num_groups": 4,
            "sample_size": 32,
        },
    },
    "full": {
        "transformer": {
            "patch_size": 1,
            "in_channels": 64,
            "num_layers": 19,
            "num_single_layers": 38,
            "attention_head_dim": 128,
            "num_attention_heads": 24,
            "joint_attention_dim": 4096,
            "pooled_projection_dim": 768,
            "guidance_embeds": True,
            "axes_dims_rope": [16, 56, 56],
        },
        "clip": {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_attention_heads": 12,
            "num_hidden_layers": 12,
            "projection_dim": 768,
            "vocab_size": 49408,
            "max_position_embeddings": 77,
            "hidden_act": "quick_gelu",
        },
        "t5": {
            "d_model": 4096,
            "d_ff": 10240,
            "d_kv": 64,
            "num_heads": 64,
            "num_layers": 24,
            "vocab_size": 32128,
            "feed_forward_proj": "gated-gelu",
        },
        "vae": {
            "block_out_channels": [128, 256, 512, 512],
            "layers_per_block": 2,
            "norm_num_groups": 32,
            "sample_size": 1024,
        },
    },
}


def clip_tokenizer() -> CLIPTokenizer:
    """A byte-level BPE CLIP tokenizer with no merges: one token per byte."""
    symbols = sorted(ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>", *symbols, *(s + "</w>" for s in symbols)]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    if len(tokenizer) != len(vocab):
        raise RuntimeError(f"CLIP tokenizer has {len(tokenizer)} tokens, expected {len(vocab)}")
    return tokenizer


def t5_tokenizer() -> T5Tokenizer:
    """A Unigram T5 tokenizer over single characters, with T5's special and sentinel tokens."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(char, -3.0) for char in string.printable.strip()]
    pieces += [("▁" + char, -2.5) for char in string.ascii_letters]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=100, model_max_length=512)
    if len(tokenizer) != len(pieces) + 100:
        raise RuntimeError(
            f"T5 tokenizer has {len(tokenizer)} tokens, expected {len(pieces) + 100}"
        )
    return tokenizer


def build_pipeline(
    size: Size = "tiny", seed: int = 0, dtype: torch.dtype = torch.float32, device: str = "cpu"
) -> FluxKontextPipeline:
    """A FluxKontextPipeline of ``size`` with random weights drawn from ``seed``, built on
    ``device`` (on a GPU the 17 B parameters of ``full`` take seconds, on the CPU minutes)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return _build(CONFIGS[size], seed)
    finally:
        torch.set_default_dtype(previous)


def build_transformer(
    size: Size = "tiny", seed: int = 0, dtype: torch.dtype = torch.float32, device: str = "cpu"
) -> FluxTransformer2DModel:
    """The transformer that :func:`build_pipeline` with the same arguments holds."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            torch.manual_seed(seed)
            return FluxTransformer2DModel(**CONFIGS[size]["transformer"])
    finally:
        torch.set_default_dtype(previous)


def _build(config: dict[str, dict[str, Any]], seed: int) -> FluxKontextPipeline:
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(**config["transformer"])
    text_encoder = CLIPTextModel(
        CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, **config["clip"])
    )
    text_encoder_2 = T5EncoderModel(T5Config(**config["t5"]))
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=16,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.1159,
        scaling_factor=0.3611,
        **config["vae"],
    )
    return FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(
            shift=3.0,
            use_dynamic_shifting=True,
            base_shift=0.5,
            max_shift=1.15,
            base_image_seq_len=256,
            max_image_seq_len=4096,
        ),
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        text_encoder_2=text_encoder_2,
        tokenizer_2=t5_tokenizer(),
        transformer=transformer,
        vae=vae,
    )


def save_random_lora(
    folder: Path,
    name: str,
    seed: int,
    size: Size = "tiny",
    rank: int = 4,
    alpha: int | None = None,
    dropout: float = 0.0,
    store_config: bool = False,
    target_modules: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0"),
) -> Path:
    """A LoRA with random weights for a ``size`` pipeline's transformer, saved as diffusers
    does (``folder/name.safetensors``); it visibly changes the output, like a style LoRA.

    With ``store_config`` the file keeps its adapter config (alpha, dropout) as trainers
    write it; without, loaders take alpha = rank. ``target_modules`` are the layers it
    changes (PEFT's names)."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = build_pipeline(size).transformer
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank if alpha is None else alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        init_lora_weights=False,
    )
    transformer.add_adapter(config, adapter_name=name)
    FluxKontextPipeline.save_lora_weights(
        folder,
        transformer_lora_layers=get_peft_model_state_dict(transformer, adapter_name=name),
        weight_name=f"{name}.safetensors",
        transformer_lora_adapter_metadata=config.to_dict() if store_config else None,
    )
    return folder / f"{name}.safetensors"
