"""qready on real models from libraries outside the zoo, side by side with AIMET.

The zoo (``zoo.py``) covers torchvision, timm and Hugging Face transformers.
Code nobody here wrote uses other idioms: ``torch.is_tensor`` checks, einops,
``*args`` forwards, containers the parent's forward reads. Each model below is
built from a small config, without weights, and measured by ``zoo.measure`` in
its own subprocess (check, prepare, an independent re-verification, a re-check
of QR003/QR004, AIMET's ``prepare_model`` and ``ModelValidator``). A library
that is not installed is listed as such, not counted as a pass.

    pip install -e '.[outside]'                                 # the libraries
    python benchmarks/outside_models.py                         # every model, AIMET columns when installed
    python benchmarks/outside_models.py --only monai --no-write  # a subset, by name (cached, not written)
    python benchmarks/outside_models.py --resume                # only models without a cached record

Records are cached per model in ``benchmarks/results/outside.json``; a run over
every model writes the "Outside models" section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine, run_worker, write_record, write_section  # noqa: E402
from zoo_models import ZooModel  # noqa: E402

Build = Callable[[], torch.nn.Module]


def _diffusers_unet() -> torch.nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )


def _diffusers_conditional_unet() -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, norm_num_groups=8, attention_head_dim=8,
    )


def _diffusers_vae() -> torch.nn.Module:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(16, 32), layers_per_block=1, latent_channels=4,
        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
    )


def _smp_unet() -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    return smp.Unet(encoder_name="resnet18", encoder_weights=None, classes=2)


def _smp_fpn() -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    return smp.FPN(encoder_name="resnet18", encoder_weights=None, classes=2)


def _monai_unet() -> torch.nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)


def _monai_swin_unetr() -> torch.nn.Module:
    from monai.networks.nets import SwinUNETR

    # 2-D: 4 stages of patch merging halve 32 four times; window 4 fits the last stages
    return SwinUNETR(in_channels=1, out_channels=2, feature_size=12, spatial_dims=2, depths=(1, 1, 1, 1),
                     num_heads=(1, 1, 1, 1), window_size=4)


def _monai_unetr() -> torch.nn.Module:
    from monai.networks.nets import UNETR

    return UNETR(in_channels=1, out_channels=2, img_size=(32, 32), feature_size=8, hidden_size=32, mlp_dim=64,
                 num_heads=2, spatial_dims=2)


def _monai_segresnet() -> torch.nn.Module:
    from monai.networks.nets import SegResNet

    return SegResNet(spatial_dims=3, init_filters=8, in_channels=1, out_channels=2, blocks_down=(1, 1, 1),
                     blocks_up=(1, 1))


def _monai_attention_unet() -> torch.nn.Module:
    from monai.networks.nets import AttentionUnet

    return AttentionUnet(spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2))


def _monai_densenet() -> torch.nn.Module:
    from monai.networks.nets import DenseNet

    return DenseNet(spatial_dims=2, in_channels=1, out_channels=3, init_features=8, growth_rate=8,
                    block_config=(2, 2))


def _open_clip() -> torch.nn.Module:
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    return CLIP(
        embed_dim=32,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
        text_cfg=CLIPTextCfg(context_length=8, vocab_size=64, width=32, heads=2, layers=1),
    )


def _kornia_hardnet() -> torch.nn.Module:
    from kornia.feature import HardNet

    return HardNet(pretrained=False)


def _kornia_sobel() -> torch.nn.Module:
    from kornia.filters import Sobel

    return Sobel()


def _x_transformers() -> torch.nn.Module:
    from x_transformers import Encoder, TransformerWrapper

    return TransformerWrapper(num_tokens=64, max_seq_len=16, attn_layers=Encoder(dim=32, depth=1, heads=2))


def _vector_quantize() -> torch.nn.Module:
    from vector_quantize_pytorch import VectorQuantize

    return VectorQuantize(dim=16, codebook_size=32)


def _diffusers_dit() -> torch.nn.Module:
    from diffusers import DiTTransformer2DModel

    return DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, num_layers=2,
                                 sample_size=8, patch_size=2, num_embeds_ada_norm=10)


def _diffusers_sd3() -> torch.nn.Module:
    from diffusers import SD3Transformer2DModel

    return SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8,
                                 num_attention_heads=2, joint_attention_dim=16, caption_projection_dim=16,
                                 pooled_projection_dim=8, out_channels=4, pos_embed_max_size=8)


def _diffusers_vae_decoder() -> torch.nn.Module:
    from diffusers.models.autoencoders.vae import Decoder

    return Decoder(in_channels=4, out_channels=3, up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(16, 32),
                   layers_per_block=1, norm_num_groups=8)


def _smp_deeplab() -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    return smp.DeepLabV3Plus(encoder_name="resnet18", encoder_weights=None, classes=2)


def _smp_timm_encoder() -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    # a timm encoder through smp's "tu-" bridge (features_only), not one of smp's own
    return smp.Unet(encoder_name="tu-mobilenetv3_small_100", encoder_weights=None, classes=2)


def _smp_pspnet() -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    return smp.PSPNet(encoder_name="resnet18", encoder_weights=None, classes=2)


# the small encoder both of torchaudio's speech builders below take: a three-layer feature extractor, two
# transformer layers of width 32, no dropout
_SMALL_SPEECH_ENCODER: dict[str, Any] = dict(
    extractor_conv_layer_config=[(16, 10, 5), (16, 3, 2), (16, 2, 2)], encoder_embed_dim=32,
    encoder_projection_dropout=0.0, encoder_pos_conv_kernel=16, encoder_pos_conv_groups=4, encoder_num_layers=2,
    encoder_num_heads=2, encoder_attention_dropout=0.0, encoder_ff_interm_features=64, encoder_ff_interm_dropout=0.0,
    encoder_dropout=0.0, encoder_layer_drop=0.0,
)


def _torchaudio_wav2vec2() -> torch.nn.Module:
    from torchaudio.models import wav2vec2_model

    return wav2vec2_model(
        extractor_mode="group_norm", extractor_conv_bias=False, encoder_layer_norm_first=False, aux_num_out=10,
        **_SMALL_SPEECH_ENCODER,
    )


def _torchaudio_conformer() -> torch.nn.Module:
    from torchaudio.models import Conformer

    return Conformer(input_dim=16, num_heads=2, ffn_dim=32, num_layers=2, depthwise_conv_kernel_size=5)


def _torchaudio_conv_tasnet() -> torch.nn.Module:
    from torchaudio.models import ConvTasNet

    return ConvTasNet(num_sources=2, enc_kernel_size=8, enc_num_feats=16, msk_kernel_size=3, msk_num_feats=8,
                      msk_num_hidden_feats=16, msk_num_layers=2, msk_num_stacks=1)


def _torchaudio_wav2letter() -> torch.nn.Module:
    from torchaudio.models import Wav2Letter

    return Wav2Letter(num_classes=10, input_type="mfcc", num_features=13)


def _ultralytics(config: str, task: str = "DetectionModel") -> Build:
    def build() -> torch.nn.Module:
        from ultralytics.nn import tasks

        return getattr(tasks, task)(config, verbose=False)  # the scale letter in the name picks the smallest widths

    return build


def _sentence_transformer() -> torch.nn.Module:
    """A sentence-transformers pipeline (BERT, mean pooling, normalization) from a tiny local
    BertConfig: the library loads from a directory, so one is written without any download."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = Path(tempfile.mkdtemp(prefix="qready-st-"))
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(59))]))
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    BertModel(config).save_pretrained(folder)
    return SentenceTransformer(modules=[Transformer(str(folder)), Pooling(32, "mean"), Normalize()], device="cpu")


def _sentence_features() -> tuple[dict[str, torch.Tensor]]:
    # the library's own calling convention: one positional dict of features
    return ({"input_ids": torch.randint(5, 64, (2, 8)), "attention_mask": torch.ones(2, 8, dtype=torch.long)},)


def _kornia_sosnet() -> torch.nn.Module:
    from kornia.feature import SOSNet

    return SOSNet(pretrained=False)


def _kornia_gaussian_blur() -> torch.nn.Module:
    from kornia.filters import GaussianBlur2d

    return GaussianBlur2d((5, 5), (1.5, 1.5))


def _kornia_rgb_to_hsv() -> torch.nn.Module:
    from kornia.color import RgbToHsv

    return RgbToHsv()


def _open_clip_resnet() -> torch.nn.Module:
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    # layers given as a tuple: open_clip's ModifiedResNet tower with attention pooling
    return CLIP(
        embed_dim=32,
        vision_cfg=CLIPVisionCfg(layers=(1, 1, 1, 1), width=16, head_width=16, image_size=64),
        text_cfg=CLIPTextCfg(context_length=8, vocab_size=64, width=32, heads=2, layers=1),
    )


def _x_transformers_decoder() -> torch.nn.Module:
    from x_transformers import Decoder, TransformerWrapper

    return TransformerWrapper(num_tokens=64, max_seq_len=16,
                              attn_layers=Decoder(dim=32, depth=2, heads=2, rotary_pos_emb=True, ff_glu=True))


def _x_transformers_vit() -> torch.nn.Module:
    from x_transformers import Encoder, ViTransformerWrapper

    return ViTransformerWrapper(image_size=32, patch_size=8, num_classes=10,
                                attn_layers=Encoder(dim=32, depth=1, heads=2))


def _residual_vq() -> torch.nn.Module:
    from vector_quantize_pytorch import ResidualVQ

    return ResidualVQ(dim=16, num_quantizers=2, codebook_size=32)


def _fsq() -> torch.nn.Module:
    from vector_quantize_pytorch import FSQ

    return FSQ(levels=[8, 5, 5])


def _efficientnet() -> torch.nn.Module:
    from efficientnet_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-b0", num_classes=10)


def _pytorchcv(name: str) -> Build:
    def build() -> torch.nn.Module:
        from pytorchcv.model_provider import get_model

        return get_model(name, pretrained=False)

    return build


def _speechbrain_ecapa() -> torch.nn.Module:
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    return ECAPA_TDNN(24, channels=[32, 32, 32, 32, 96], lin_neurons=32, attention_channels=16, se_channels=16)


def _speechbrain_xvector() -> torch.nn.Module:
    from speechbrain.lobes.models.Xvector import Xvector

    return Xvector(in_channels=24, tdnn_channels=[32, 32, 32, 32, 64], lin_neurons=32)


def _pretrainedmodels(name: str) -> Build:
    def build() -> torch.nn.Module:
        import pretrainedmodels

        return pretrainedmodels.__dict__[name](pretrained=None)

    return build


def _facenet_inception_resnet() -> torch.nn.Module:
    from facenet_pytorch import InceptionResnetV1

    return InceptionResnetV1(pretrained=None)


def _facenet_onet() -> torch.nn.Module:
    from facenet_pytorch.models.mtcnn import ONet

    return ONet(pretrained=False)  # MTCNN's last stage: box, landmarks and face probability


def _geffnet(name: str) -> Build:
    def build() -> torch.nn.Module:
        import geffnet

        return geffnet.create_model(name, pretrained=False)

    return build


def _torchaudio_emformer() -> torch.nn.Module:
    from torchaudio.models import Emformer

    return Emformer(input_dim=16, num_heads=2, ffn_dim=32, num_layers=2, segment_length=4, right_context_length=1)


def _torchaudio_wavernn() -> torch.nn.Module:
    from torchaudio.models import WaveRNN

    return WaveRNN(upsample_scales=[2, 2], n_classes=16, hop_length=4, n_res_block=1, n_rnn=16, n_fc=16,
                   kernel_size=3, n_freq=8, n_hidden=8, n_output=8)


def _torchaudio_wavlm() -> torch.nn.Module:
    from torchaudio.models import wavlm_model

    return wavlm_model(
        extractor_mode="layer_norm", extractor_conv_bias=True, encoder_num_buckets=32, encoder_max_distance=64,
        encoder_layer_norm_first=True, aux_num_out=None, **_SMALL_SPEECH_ENCODER,
    )


def _torchaudio_hdemucs() -> torch.nn.Module:
    from torchaudio.models import HDemucs

    # two branches: the STFT spectrogram (complex values as channels) and the waveform
    return HDemucs(sources=["drums", "vocals"], channels=4, nfft=256, depth=3, dconv_depth=1)


def _torchaudio_squim() -> torch.nn.Module:
    from torchaudio.models import squim_objective_model

    return squim_objective_model(feat_dim=16, win_len=8, d_model=16, nhead=2, hidden_dim=16, num_blocks=1,
                                 rnn_type="LSTM", chunk_size=8)


def _diffusers_controlnet() -> torch.nn.Module:
    from diffusers import ControlNetModel

    return ControlNetModel(
        in_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), cross_attention_dim=32, norm_num_groups=8,
        attention_head_dim=8, conditioning_embedding_out_channels=(8, 16),
    )


def _diffusers_pixart() -> torch.nn.Module:
    from diffusers import PixArtTransformer2DModel

    return PixArtTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                    num_layers=2, cross_attention_dim=16, sample_size=8, patch_size=2,
                                    caption_channels=16, use_additional_conditions=False)


def _diffusers_flux() -> torch.nn.Module:
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(patch_size=1, in_channels=8, num_layers=1, num_single_layers=1, attention_head_dim=8,
                                  num_attention_heads=2, joint_attention_dim=16, pooled_projection_dim=8,
                                  axes_dims_rope=(2, 2, 4))


def _flux_inputs() -> tuple[torch.Tensor, ...]:
    image_ids = torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(4.0), torch.arange(4.0), indexing="ij"), -1)
    return (torch.randn(1, 16, 8), torch.randn(1, 5, 16), torch.randn(1, 8), torch.tensor([0.5]),
            image_ids.reshape(16, 3), torch.zeros(5, 3))


def _monai_dynunet() -> torch.nn.Module:
    from monai.networks.nets import DynUNet

    return DynUNet(spatial_dims=2, in_channels=1, out_channels=2, kernel_size=(3, 3, 3), strides=(1, 2, 2),
                   upsample_kernel_size=(2, 2), filters=(8, 16, 32), res_block=True)


def _x_transformers_encoder_decoder() -> torch.nn.Module:
    from x_transformers import XTransformer

    return XTransformer(dim=32, enc_num_tokens=64, enc_depth=1, enc_heads=2, enc_max_seq_len=16, dec_num_tokens=64,
                        dec_depth=1, dec_heads=2, dec_max_seq_len=16, tie_token_emb=True)


def _speechbrain_conformer_asr() -> torch.nn.Module:
    from speechbrain.lobes.models.transformer.TransformerASR import TransformerASR

    return TransformerASR(tgt_vocab=20, input_size=24, d_model=32, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                          d_ffn=64, encoder_module="conformer", attention_type="RelPosMHAXL", normalize_before=True,
                          causal=False)


def _kornia_keynet() -> torch.nn.Module:
    from kornia.feature import KeyNet

    return KeyNet(pretrained=False)


def _tokens(*shape: int, high: int = 64) -> Callable[[], tuple[torch.Tensor, ...]]:
    return lambda: (torch.randint(0, high, shape),)


def _tensors(*shapes: tuple[int, ...]) -> Callable[[], tuple[torch.Tensor, ...]]:
    return lambda: tuple(torch.randn(*shape) for shape in shapes)


MODELS: list[tuple[str, str, Build, Callable[[], Any]]] = [
    # (name, the library's import name, builder, example inputs)
    ("diffusers/UNet2DModel", "diffusers", _diffusers_unet, lambda: (torch.randn(1, 3, 16, 16), torch.tensor([10]))),
    ("diffusers/UNet2DConditionModel", "diffusers", _diffusers_conditional_unet,
     lambda: (torch.randn(1, 4, 16, 16), torch.tensor([10]), torch.randn(1, 5, 32))),
    ("diffusers/AutoencoderKL", "diffusers", _diffusers_vae, _tensors((1, 3, 32, 32))),
    ("smp/Unet-resnet18", "segmentation_models_pytorch", _smp_unet, _tensors((1, 3, 64, 64))),
    ("smp/FPN-resnet18", "segmentation_models_pytorch", _smp_fpn, _tensors((1, 3, 64, 64))),
    ("monai/UNet", "monai", _monai_unet, _tensors((1, 1, 32, 32))),
    ("monai/SwinUNETR", "monai", _monai_swin_unetr, _tensors((1, 1, 64, 64))),
    ("open_clip/CLIP", "open_clip", _open_clip, lambda: (torch.randn(1, 3, 32, 32), torch.randint(0, 64, (1, 8)))),
    ("kornia/HardNet", "kornia", _kornia_hardnet, _tensors((2, 1, 32, 32))),
    ("kornia/Sobel", "kornia", _kornia_sobel, _tensors((1, 3, 32, 32))),
    ("x_transformers/TransformerWrapper", "x_transformers", _x_transformers, _tokens(1, 16)),
    ("vector_quantize_pytorch/VectorQuantize", "vector_quantize_pytorch", _vector_quantize, _tensors((1, 8, 16))),
    ("einops/SwinUNETR-style attention", "einops", lambda: _einops_block(), _tensors((2, 16, 32))),
    ("diffusers/DiTTransformer2DModel", "diffusers", _diffusers_dit,
     lambda: (torch.randn(1, 4, 8, 8), torch.tensor([10]), torch.tensor([3]))),
    ("diffusers/SD3Transformer2DModel", "diffusers", _diffusers_sd3,
     lambda: (torch.randn(1, 4, 8, 8), torch.randn(1, 5, 16), torch.randn(1, 8), torch.tensor([10]))),
    ("diffusers/VAE Decoder", "diffusers", _diffusers_vae_decoder, _tensors((1, 4, 16, 16))),
    ("smp/DeepLabV3Plus-resnet18", "segmentation_models_pytorch", _smp_deeplab, _tensors((1, 3, 64, 64))),
    ("smp/Unet-tu-mobilenetv3", "segmentation_models_pytorch", _smp_timm_encoder, _tensors((1, 3, 64, 64))),
    ("smp/PSPNet-resnet18", "segmentation_models_pytorch", _smp_pspnet, _tensors((1, 3, 64, 64))),
    ("monai/UNETR", "monai", _monai_unetr, _tensors((1, 1, 32, 32))),
    ("monai/SegResNet-3d", "monai", _monai_segresnet, _tensors((1, 1, 16, 16, 16))),
    ("monai/AttentionUnet", "monai", _monai_attention_unet, _tensors((1, 1, 32, 32))),
    ("monai/DenseNet", "monai", _monai_densenet, _tensors((1, 1, 32, 32))),
    ("torchaudio/Wav2Vec2Model", "torchaudio", _torchaudio_wav2vec2, _tensors((1, 800))),
    ("torchaudio/Conformer", "torchaudio", _torchaudio_conformer,
     # full lengths: a fresh input draws lengths within the example's range, and the longest must be T
     lambda: (torch.randn(2, 12, 16), torch.tensor([12, 12]))),
    ("torchaudio/ConvTasNet", "torchaudio", _torchaudio_conv_tasnet, _tensors((1, 1, 256))),
    ("torchaudio/Wav2Letter", "torchaudio", _torchaudio_wav2letter, _tensors((1, 13, 40))),
    ("ultralytics/yolov8n", "ultralytics", _ultralytics("yolov8n.yaml"), _tensors((1, 3, 64, 64))),
    ("ultralytics/yolo11n", "ultralytics", _ultralytics("yolo11n.yaml"), _tensors((1, 3, 64, 64))),
    ("sentence_transformers/BERT-mean-pooling", "sentence_transformers", _sentence_transformer, _sentence_features),
    ("kornia/SOSNet", "kornia", _kornia_sosnet, _tensors((2, 1, 32, 32))),
    ("kornia/GaussianBlur2d", "kornia", _kornia_gaussian_blur, _tensors((1, 3, 32, 32))),
    ("kornia/RgbToHsv", "kornia", _kornia_rgb_to_hsv, lambda: (torch.rand(1, 3, 16, 16),)),
    ("open_clip/CLIP-ModifiedResNet", "open_clip", _open_clip_resnet,
     lambda: (torch.randn(1, 3, 64, 64), torch.randint(0, 64, (1, 8)))),
    ("x_transformers/Decoder-rotary", "x_transformers", _x_transformers_decoder, _tokens(1, 16)),
    ("x_transformers/ViTransformerWrapper", "x_transformers", _x_transformers_vit, _tensors((1, 3, 32, 32))),
    ("vector_quantize_pytorch/ResidualVQ", "vector_quantize_pytorch", _residual_vq, _tensors((1, 8, 16))),
    ("vector_quantize_pytorch/FSQ", "vector_quantize_pytorch", _fsq, _tensors((1, 8, 3))),
    ("efficientnet_pytorch/efficientnet-b0", "efficientnet_pytorch", _efficientnet, _tensors((1, 3, 64, 64))),
    ("pytorchcv/seresnet20_cifar10", "pytorchcv", _pytorchcv("seresnet20_cifar10"), _tensors((1, 3, 32, 32))),
    ("pytorchcv/shufflenetv2_wd2", "pytorchcv", _pytorchcv("shufflenetv2_wd2"), _tensors((1, 3, 224, 224))),
    ("speechbrain/ECAPA_TDNN", "speechbrain", _speechbrain_ecapa, _tensors((2, 50, 24))),
    ("speechbrain/Xvector", "speechbrain", _speechbrain_xvector, _tensors((2, 50, 24))),
    ("pretrainedmodels/nasnetamobile", "pretrainedmodels", _pretrainedmodels("nasnetamobile"),
     _tensors((1, 3, 224, 224))),
    ("pretrainedmodels/dpn68", "pretrainedmodels", _pretrainedmodels("dpn68"), _tensors((1, 3, 224, 224))),
    ("facenet_pytorch/InceptionResnetV1", "facenet_pytorch", _facenet_inception_resnet, _tensors((2, 3, 96, 96))),
    ("facenet_pytorch/MTCNN-ONet", "facenet_pytorch", _facenet_onet, _tensors((2, 3, 48, 48))),
    ("geffnet/mobilenetv3_large_100", "geffnet", _geffnet("mobilenetv3_large_100"), _tensors((1, 3, 64, 64))),
    ("geffnet/tf_efficientnet_lite0", "geffnet", _geffnet("tf_efficientnet_lite0"), _tensors((1, 3, 64, 64))),
    ("torchaudio/Emformer", "torchaudio", _torchaudio_emformer,
     # 12 utterance frames and the one frame of right context after them
     lambda: (torch.randn(2, 13, 16), torch.tensor([12, 12]))),
    ("torchaudio/WaveRNN", "torchaudio", _torchaudio_wavernn, _tensors((1, 1, 32), (1, 1, 8, 10))),
    ("torchaudio/WavLM", "torchaudio", _torchaudio_wavlm, _tensors((1, 800))),
    ("torchaudio/HDemucs", "torchaudio", _torchaudio_hdemucs, _tensors((1, 2, 1024))),
    ("torchaudio/SquimObjective", "torchaudio", _torchaudio_squim, _tensors((1, 800))),
    ("diffusers/ControlNetModel", "diffusers", _diffusers_controlnet,
     lambda: (torch.randn(1, 4, 16, 16), torch.tensor([10]), torch.randn(1, 5, 32), torch.randn(1, 3, 32, 32))),
    ("diffusers/PixArtTransformer2DModel", "diffusers", _diffusers_pixart,
     lambda: (torch.randn(1, 4, 8, 8), torch.randn(1, 5, 16), torch.tensor([10]))),
    ("diffusers/FluxTransformer2DModel", "diffusers", _diffusers_flux, _flux_inputs),
    ("monai/DynUNet", "monai", _monai_dynunet, _tensors((1, 1, 32, 32))),
    ("ultralytics/yolov8n-seg", "ultralytics", _ultralytics("yolov8n-seg.yaml", "SegmentationModel"),
     _tensors((1, 3, 64, 64))),
    ("ultralytics/yolov8n-pose", "ultralytics", _ultralytics("yolov8n-pose.yaml", "PoseModel"),
     _tensors((1, 3, 64, 64))),
    ("x_transformers/XTransformer", "x_transformers", _x_transformers_encoder_decoder,
     lambda: (torch.randint(0, 64, (1, 16)), torch.randint(0, 64, (1, 16)))),
    ("speechbrain/TransformerASR-conformer", "speechbrain", _speechbrain_conformer_asr,
     lambda: (torch.randn(2, 20, 24), torch.randint(1, 20, (2, 6)))),
    ("kornia/KeyNet", "kornia", _kornia_keynet, _tensors((1, 1, 32, 32))),
]


def _einops_block() -> torch.nn.Module:
    """einops-based attention of the kind x-transformers and monai write: rearrange around a
    projection, reduce at the end (einops ships no models of its own)."""
    import einops
    from torch import nn

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv, self.out = nn.Linear(32, 96), nn.Linear(32, 32)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = einops.rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=4)
            attention = torch.softmax(torch.einsum("bhid,bhjd->bhij", q, k) * 8 ** -0.5, dim=-1)
            out = einops.rearrange(attention @ v, "b h n d -> b n (h d)")
            return einops.reduce(self.out(out), "b n c -> b c", "mean")

    return Attention()


def entries() -> list[tuple[ZooModel, str]]:
    return [(ZooModel(name, "outside", build, inputs), library) for name, library, build, inputs in MODELS]


def _installed(library: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(library) is not None


# --- the runner, shared with aimet_test_models.py ------------------------------------------------


def work(entry: ZooModel, out: Path, aimet: bool) -> int:
    """Measure one model in this process (the worker side of ``run_one``)."""
    import logging

    import zoo

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    logging.getLogger().setLevel(logging.ERROR)
    write_record(out, zoo.measure(entry, onnx=False, aimet=aimet, on_stage=lambda r: write_record(out, r)))
    return 0


def run_one(script: Path, name: str, aimet: bool, timeout: float, extra: list[str]) -> dict[str, Any]:
    """``script --worker NAME`` in its own process: a crash, a hang or a leaked global stays there."""
    from zoo import verdict

    run = run_worker(script, name, timeout=timeout, options=[*extra, *([] if aimet else ["--no-aimet"])],
                     env={"YOLO_OFFLINE": "1"})
    record = run.record or {"name": name, "stage": "start"}
    if run.status != "ok" or record.get("stage") != "done":
        record["status"] = run.status if run.status != "ok" else "incomplete"
        record["timeout_s"] = timeout
        record["log_tail"] = run.log_tail
        record["verdict"] = verdict(record)
    record["wall_s"] = run.wall_s
    return settled(record)


def settled(record: dict[str, Any]) -> dict[str, Any]:
    """A worker that ran out of time in AIMET's stage (or on its way out) had ended all of qready's:
    qready's verdict stands, and AIMET's side reads as timed out."""
    from zoo import verdict

    if record.get("status") == "timeout" and record.get("stage") in ("aimet", "done"):
        record["status"] = "ok"
        if record["stage"] == "aimet":
            record["aimet"] = {"prepare": "timeout", "prepare_error": f"timed out ({record.get('timeout_s')} s for the model)"}
        record["verdict"] = verdict(record)
    return record


def row(name: str, record: dict[str, Any] | None, missing: str = "") -> str:
    if record is None:
        return f"| {name} | {missing} | | | | | |"
    v = record.get("verdict", {})
    prep = record.get("prepare") or {}
    aimet = record.get("aimet") or {}

    def mark(value: Any) -> str:
        return {True: "yes", False: "no", None: "-"}.get(value, str(value))

    reason = (v.get("reason") or "").replace("|", "/")[:160]
    leaves = len(prep.get("leaves") or [])
    aimet_text = mark(v.get("aimet_identical")) if aimet else "-"
    if aimet and aimet.get("prepare") != "ok":
        aimet_text = "fails: " + (aimet.get("prepare_error") or "")[:70].replace("|", "/")
    elif aimet and aimet.get("identical") is False:
        aimet_text = "no: " + (aimet.get("identical_error") or "")[:70].replace("|", "/")
    on_aimet = mark(v.get("validator_on_aimet")) if aimet.get("prepare") == "ok" else "-"
    validator = f"{on_aimet} / {mark(v.get('validator_on_qready'))}" if aimet else "-"
    return (f"| {name} | {mark(v.get('prepare_pass'))} | {mark(v.get('identical'))} | {leaves} | "
            f"{aimet_text} | {validator} | {reason} |")


HEADER = [
    "| model | qready prepare passes | bit-identical | leaves | AIMET prepare_model bit-identical "
    "| AIMET ModelValidator passes: on AIMET's / on qready's result | reason |",
    "|---|---|---|---:|---|---|---|",
]


def load(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError):
        return {}


def run_set(
    script: Path,
    todo: list[tuple[str, str | None]],
    args: argparse.Namespace,
    extra: list[str] | None = None,
) -> tuple[list[str], int, int]:
    """Measure each ``(name, missing)`` (``missing``: why it cannot run here, or None), one
    subprocess each (``--jobs`` at a time), caching records in ``args.results`` as each one ends so
    that ``--resume`` picks up where a run stopped. Returns the table rows (in ``todo``'s order),
    the passes and the models measured."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    lock = threading.Lock()

    aimet = not args.no_aimet and _installed("aimet_torch")
    cache = load(args.results)
    selected = [(name, missing) for name, missing in todo if not args.only or re.search(args.only, name)]
    wanted = [name for name, missing in selected if missing is None and not (args.resume and name in cache)]

    def measure(name: str) -> None:
        record = run_one(script, name, aimet, args.timeout, extra or [])
        with lock:
            cache[name] = record
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(cache, indent=1, default=str))
            print(row(name, record), flush=True)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(measure, wanted))
    rows, passed, measured = [], 0, 0
    for name, missing in selected:
        record = settled(cache[name]) if missing is None and name in cache else None
        if record is not None:
            measured += 1
            passed += bool(record.get("verdict", {}).get("prepare_pass"))
        rows.append(row(name, record, missing or "no record"))
    return rows, passed, measured


def report(args: argparse.Namespace, section: str, title: str, intro: str, rows: list[str], passed: int,
           measured: int) -> None:
    """Print the score; over every model (no ``--only``), write the table to ``BENCHMARKS.md``."""
    body = "\n".join([f"## {title}", "", intro, "", f"**qready: {passed}/{measured} pass.**", "", *HEADER, *rows])
    if not args.no_write and not args.only:
        write_section(section, body)
    print(f"{passed}/{measured} pass")


def add_arguments(parser: argparse.ArgumentParser, results: Path) -> None:
    parser.add_argument("--only", metavar="REGEX", help="models whose name matches")
    parser.add_argument("--no-aimet", action="store_true", help="leave the AIMET columns out")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per model")
    parser.add_argument("--resume", action="store_true", help="reuse the records cached in --results")
    parser.add_argument("--jobs", type=int, default=1, help="models measured at the same time")
    parser.add_argument("--results", type=Path, default=results, help="the JSON cache of per-model records")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, ROOT / "benchmarks" / "results" / "outside.json")
    args = parser.parse_args(argv)
    if args.worker:
        [entry] = [e for e, _ in entries() if e.name == args.worker]
        return work(entry, args.worker_out, not args.no_aimet and _installed("aimet_torch"))

    todo = [(e.name, None if _installed(library) else f"{library} not installed") for e, library in entries()]
    rows, passed, measured = run_set(Path(__file__).resolve(), todo, args)
    libraries = sorted({library for _, library in entries()})
    command = "python benchmarks/outside_models.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    intro = (
        f"`{command}` on {machine()}. {len(MODELS)} real models from {len(libraries)} libraries outside "
        f"torchvision, timm and transformers ({', '.join(libraries)}), built from small configs without "
        "weights, one subprocess each (`zoo.measure`: prepare verified bit-identical, again on an input the "
        "benchmark draws, QR003/QR004 re-checked; QR001 skipped), AIMET's `prepare_model` and "
        "`ModelValidator` side by side. Target: qready prepare passes (bit-identical and clean) on 100%."
    )
    report(args, "outside-models", "Outside models", intro, rows, passed, measured)
    return 0


if __name__ == "__main__":
    sys.exit(main())
