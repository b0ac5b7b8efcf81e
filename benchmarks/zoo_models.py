"""The zoo: which models ``benchmarks/zoo.py`` measures, how each is built, and its inputs.

Every torchvision model (``torchvision.models.list_models()``), a wide sample of
timm architectures (the smallest variant of each family) and tiny Hugging Face
models built from configs. Nothing is downloaded: ``weights=None``,
``pretrained=False``, configs written here. Inputs are small but valid for
each family, seeded, and the same in every run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["ZooModel", "zoo", "select", "FAMILIES"]

Inputs = tuple[Any, ...] | Mapping[str, Any]


@dataclass(frozen=True)
class ZooModel:
    """One model of the zoo: a name (``tv/resnet18``), its family, a builder and example inputs."""

    name: str
    family: str
    build: Callable[[], torch.nn.Module] = field(repr=False)
    inputs: Callable[[], Inputs] = field(repr=False)

    def example(self) -> Inputs:
        """The example inputs, drawn from a fixed seed."""
        torch.manual_seed(1234)
        return self.inputs()

    def model(self) -> torch.nn.Module:
        """The model in eval mode, weights drawn from ``torch.manual_seed(0)``."""
        torch.manual_seed(0)
        return self.build().eval()


FAMILIES = (
    "tv-classification",
    "tv-quantizable",
    "tv-segmentation",
    "tv-video",
    "tv-optical-flow",
    "tv-detection",
    "timm-cnn",
    "timm-mobile",
    "timm-vit",
    "timm-hybrid",
    "timm-mlp",
    "hf-text",
    "hf-vision",
    "hf-audio",
    "hf-llm",  # causal LMs at their default config, prefill and decode step: llm_zoo.py
)


def _image(*shape: int) -> Callable[[], tuple[torch.Tensor]]:
    return lambda: (torch.randn(*shape),)


def _shape_text(shape: Iterable[int]) -> str:
    return "x".join(str(s) for s in shape)


# --- torchvision ----------------------------------------------------------------------------

# Detection models resize every image inside the model (GeneralizedRCNNTransform): keep
# that size small. SSD models have their own fixed sizes (300, 320).
_DETECTION_SIZE = {"min_size": 320, "max_size": 320}
_VIDEO_INPUT = {"mvit_v1_b": (1, 3, 16, 224, 224), "mvit_v2_s": (1, 3, 16, 224, 224), "s3d": (1, 3, 16, 224, 224)}


def _torchvision() -> list[ZooModel]:
    import torchvision
    from torchvision import models

    modules = {
        "tv-segmentation": models.segmentation,
        "tv-video": models.video,
        "tv-optical-flow": models.optical_flow,
        "tv-detection": models.detection,
        "tv-quantizable": models.quantization,
    }
    family_of = {name: family for family, module in modules.items() for name in models.list_models(module=module)}
    entries = []
    for name in sorted(models.list_models()):
        family = family_of.get(name, "tv-classification")
        kwargs: dict[str, Any] = {"weights": None}
        if family in ("tv-detection", "tv-segmentation"):
            kwargs["weights_backbone"] = None  # the default would download ImageNet weights
        if family == "tv-detection":
            if not name.startswith("ssd"):
                kwargs.update(_DETECTION_SIZE)
            side = 320 if not name.startswith("ssd") else int(re.search(r"ssd\w*?(\d+)", name).group(1))
            shape: tuple[int, ...] = (3, side, side)
            inputs: Callable[[], Inputs] = lambda shape=shape: ([torch.rand(*shape)],)
        elif family == "tv-optical-flow":
            shape = (1, 3, 128, 128)
            inputs = lambda shape=shape: (torch.randn(*shape), torch.randn(*shape))
        elif family == "tv-video":
            inputs = _image(*_VIDEO_INPUT.get(name, (1, 3, 8, 112, 112)))
        elif family == "tv-segmentation":
            inputs = _image(1, 3, 128, 128)
        else:
            inputs = _image(1, 3, 224, 224)
        if family == "tv-quantizable":
            kwargs["quantize"] = False  # the float, quantization-ready model (QuantStub, FloatFunctional)
        build = lambda name=name, kwargs=kwargs: torchvision.models.get_model(name, **kwargs)
        entries.append(ZooModel(f"tv/{name}", family, build, inputs))
    return entries


# --- timm -----------------------------------------------------------------------------------

# The smallest variant of each architecture family, grouped for the summary.
TIMM_MODELS: dict[str, tuple[str, ...]] = {
    "timm-cnn": (
        "resnet18", "resnetv2_50", "resnest14d", "seresnext26d_32x4d", "res2net50_14w_8s", "densenet121",
        "dpn48b", "dla46_c", "hrnet_w18_small", "cspresnet50", "cspdarknet53", "regnetx_002", "regnetz_b16",
        "selecsls42b", "ese_vovnet19b_dw", "inception_v3", "xception41", "nf_resnet26", "gernet_s",
        "halonet26t", "botnet26t_256", "hgnetv2_b0", "rdnet_tiny", "tresnet_m",
    ),
    "timm-mobile": (
        "efficientnet_b0", "efficientnet_lite0", "tf_efficientnetv2_b0", "mobilenetv2_050",
        "mobilenetv3_small_050", "mobilenetv4_conv_small", "ghostnet_100", "ghostnetv2_100", "repvgg_a0",
        "mobileone_s0", "rexnet_100", "tinynet_e", "lcnet_050", "mixnet_s", "hardcorenas_a", "repvit_m1",
        "fasternet_t0", "starnet_s050", "efficientvit_m0", "shvit_s1",
    ),
    "timm-vit": (
        "vit_tiny_patch16_224", "deit_tiny_patch16_224", "swin_tiny_patch4_window7_224",
        "swinv2_tiny_window8_256", "cait_xxs24_224", "xcit_nano_12_p16_224", "pit_ti_224",
        "crossvit_tiny_240", "beit_base_patch16_224", "eva02_tiny_patch14_224", "convit_tiny",
        "twins_pcpvt_small", "pvt_v2_b0", "davit_tiny", "hiera_tiny_224", "volo_d1_224", "tnt_s_patch16_224",
        "mvitv2_tiny", "gcvit_xxtiny",
    ),
    "timm-hybrid": (
        "convnext_atto", "convnextv2_atto", "maxvit_rmlp_pico_rw_256", "coatnet_nano_rw_224", "coat_tiny",
        "levit_128s", "mobilevit_xxs", "mobilevitv2_050", "efficientformer_l1", "efficientformerv2_s0",
        "fastvit_t8", "edgenext_xx_small", "efficientvit_b0", "tiny_vit_5m_224", "inception_next_tiny",
        "focalnet_tiny_srf", "poolformer_s12", "caformer_s18", "visformer_tiny", "swiftformer_xs",
        "mambaout_femto",
    ),
    "timm-mlp": ("mixer_s32_224", "resmlp_12_224", "gmlp_ti16_224", "sequencer2d_s"),
}


def _timm() -> list[ZooModel]:
    entries = []
    for family, names in TIMM_MODELS.items():
        for name in names:
            entries.append(ZooModel(f"timm/{name}", family, _timm_build(name), _timm_inputs(name)))
    return entries


def _timm_build(name: str) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        import timm

        return timm.create_model(name, pretrained=False)

    return build


def _timm_input_size(name: str) -> tuple[int, int, int]:
    import timm

    cfg = timm.get_pretrained_cfg(name)
    return tuple(cfg.input_size) if cfg is not None else (3, 224, 224)  # type: ignore[return-value]


def _timm_inputs(name: str) -> Callable[[], Inputs]:
    return lambda: (torch.randn(1, *_timm_input_size(name)),)


# --- Hugging Face ---------------------------------------------------------------------------

_TEXT = {"vocab_size": 128, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 64, "max_position_embeddings": 64}
_SEQUENCE = 16


def _text_inputs(*, token_types: bool = False, mask: bool = True) -> Callable[[], Inputs]:
    def inputs() -> dict[str, torch.Tensor]:
        batch = {"input_ids": torch.randint(0, _TEXT["vocab_size"], (1, _SEQUENCE))}
        if mask:
            batch["attention_mask"] = torch.ones(1, _SEQUENCE, dtype=torch.long)
        if token_types:
            batch["token_type_ids"] = torch.zeros(1, _SEQUENCE, dtype=torch.long)
        return batch

    return inputs


def _pixels(size: int, channels: int = 3) -> Callable[[], Inputs]:
    return lambda: {"pixel_values": torch.randn(1, channels, size, size)}


def _hf(model_class: str, config_class: str, **config: Any) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        import transformers

        cfg = getattr(transformers, config_class)(**config)
        return getattr(transformers, model_class)(cfg)

    return build


def _whisper_encoder() -> torch.nn.Module:
    import transformers
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    config = transformers.WhisperConfig(
        vocab_size=128, num_mel_bins=16, d_model=32, encoder_layers=2, encoder_attention_heads=4,
        decoder_layers=2, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=16, max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=1,
    )
    return WhisperEncoder(config)


def _decoder(config_class: str, model_class: str, **extra: Any) -> Callable[[], torch.nn.Module]:
    config = {**_TEXT, "num_key_value_heads": 2, "use_cache": False, **extra}
    return _hf(model_class, config_class, **config)


def _huggingface() -> list[ZooModel]:
    bert_like = dict(_TEXT)
    entries = [
        ZooModel("hf/bert", "hf-text", _hf("BertModel", "BertConfig", **bert_like), _text_inputs(token_types=True)),
        ZooModel("hf/distilbert", "hf-text",
                 _hf("DistilBertModel", "DistilBertConfig", vocab_size=128, dim=32, n_layers=2, n_heads=4,
                     hidden_dim=64, max_position_embeddings=64),
                 _text_inputs()),
        ZooModel("hf/roberta", "hf-text", _hf("RobertaModel", "RobertaConfig", **bert_like), _text_inputs()),
        ZooModel("hf/albert", "hf-text",
                 _hf("AlbertModel", "AlbertConfig", **bert_like, embedding_size=16), _text_inputs()),
        ZooModel("hf/electra", "hf-text",
                 _hf("ElectraModel", "ElectraConfig", **bert_like, embedding_size=16), _text_inputs()),
        ZooModel("hf/deberta-v2", "hf-text", _hf("DebertaV2Model", "DebertaV2Config", **bert_like), _text_inputs()),
        ZooModel("hf/mobilebert", "hf-text",
                 _hf("MobileBertModel", "MobileBertConfig", vocab_size=128, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, embedding_size=16, intra_bottleneck_size=16,
                     true_hidden_size=16, max_position_embeddings=64),
                 _text_inputs()),
        ZooModel("hf/gpt2", "hf-text",
                 _hf("GPT2LMHeadModel", "GPT2Config", vocab_size=128, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     bos_token_id=0, eos_token_id=0, use_cache=False),
                 _text_inputs()),
        ZooModel("hf/opt", "hf-text",
                 _hf("OPTForCausalLM", "OPTConfig", vocab_size=128, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, ffn_dim=64, max_position_embeddings=64, word_embed_proj_dim=32,
                     use_cache=False),
                 _text_inputs()),
        ZooModel("hf/llama", "hf-text", _decoder("LlamaConfig", "LlamaForCausalLM"), _text_inputs()),
        ZooModel("hf/qwen2", "hf-text", _decoder("Qwen2Config", "Qwen2ForCausalLM"), _text_inputs()),
        ZooModel("hf/mistral", "hf-text", _decoder("MistralConfig", "MistralForCausalLM"), _text_inputs()),
        ZooModel("hf/phi", "hf-text", _decoder("PhiConfig", "PhiForCausalLM"), _text_inputs()),
        ZooModel("hf/gemma2", "hf-text", _decoder("Gemma2Config", "Gemma2ForCausalLM", head_dim=8), _text_inputs()),
        ZooModel("hf/t5-encoder", "hf-text",
                 _hf("T5EncoderModel", "T5Config", vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                     num_heads=4),
                 _text_inputs()),
        ZooModel("hf/bart", "hf-text",
                 _hf("BartModel", "BartConfig", vocab_size=128, d_model=32, encoder_layers=2, decoder_layers=2,
                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                     max_position_embeddings=64, use_cache=False),
                 _text_inputs()),
        ZooModel("hf/vit", "hf-vision",
                 _hf("ViTForImageClassification", "ViTConfig", hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, image_size=32, patch_size=8),
                 _pixels(32)),
        ZooModel("hf/clip-vision", "hf-vision",
                 _hf("CLIPVisionModel", "CLIPVisionConfig", hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, image_size=32, patch_size=8),
                 _pixels(32)),
        ZooModel("hf/dinov2", "hf-vision",
                 _hf("Dinov2Model", "Dinov2Config", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     mlp_ratio=2, image_size=32, patch_size=8),
                 _pixels(32)),
        ZooModel("hf/swin", "hf-vision",
                 _hf("SwinModel", "SwinConfig", image_size=32, patch_size=4, embed_dim=16, depths=[1, 1],
                     num_heads=[2, 2], window_size=4),
                 _pixels(32)),
        ZooModel("hf/convnext", "hf-vision",
                 _hf("ConvNextModel", "ConvNextConfig", hidden_sizes=[16, 32], depths=[1, 1], num_stages=2),
                 _pixels(64)),
        ZooModel("hf/resnet", "hf-vision",
                 _hf("ResNetModel", "ResNetConfig", embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1]),
                 _pixels(64)),
        ZooModel("hf/segformer", "hf-vision",
                 _hf("SegformerForSemanticSegmentation", "SegformerConfig", num_encoder_blocks=2, depths=[1, 1],
                     sr_ratios=[2, 1], hidden_sizes=[16, 32], patch_sizes=[7, 3], strides=[4, 2],
                     num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=32),
                 _pixels(64)),
        ZooModel("hf/mobilevit", "hf-vision",
                 _hf("MobileViTModel", "MobileViTConfig", image_size=64, hidden_sizes=[16, 24, 32],
                     neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 32]),
                 _pixels(64)),
        ZooModel("hf/whisper-encoder", "hf-audio", _whisper_encoder,
                 lambda: {"input_features": torch.randn(1, 16, 32)}),
        ZooModel("hf/wav2vec2", "hf-audio",
                 _hf("Wav2Vec2Model", "Wav2Vec2Config", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3),
                     num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
                 lambda: {"input_values": torch.randn(1, 1600)}),
    ]
    return entries


# --- the whole zoo --------------------------------------------------------------------------


def zoo() -> list[ZooModel]:
    """Every model, torchvision first, then timm, then Hugging Face, then the causal LMs of llm_zoo.py."""
    from llm_zoo import llm_zoo

    return [*_torchvision(), *_timm(), *_huggingface(), *llm_zoo()]


def select(models: list[ZooModel], *, only: str | None = None, families: Iterable[str] = ()) -> list[ZooModel]:
    """Models whose name matches ``only`` (a regex, searched) and whose family starts with one of ``families``."""
    families = tuple(families)
    pattern = re.compile(only) if only else None
    return [
        m for m in models
        if (pattern is None or pattern.search(m.name)) and (not families or m.family.startswith(families))
    ]


def describe_inputs(inputs: Inputs) -> str:
    """``1x3x224x224``, ``[3x320x320]``, ``input_ids:1x16 attention_mask:1x16``."""
    def one(value: Any) -> str:
        if isinstance(value, torch.Tensor):
            dtype = "" if value.dtype == torch.float32 else f"{str(value.dtype).removeprefix('torch.')}:"
            return dtype + _shape_text(value.shape)
        if isinstance(value, list):
            return "[" + ", ".join(one(v) for v in value) + "]"
        if isinstance(value, tuple):
            return " ".join(one(v) for v in value)
        return repr(value)

    if isinstance(inputs, Mapping):
        return " ".join(f"{k}:{one(v)}" for k, v in inputs.items())
    return one(tuple(inputs))
