"""The zoo's models: what to build and how, as the text of a gradlint target file per model.

Every model is built with random initialization from code or a config (torchvision
``weights=None``, timm ``pretrained=False``, transformers ``Model(Config(...))``): nothing comes
from a hub. A model's target file is what a user would write: a ``build()`` factory, and an
``example_inputs()`` only where a user would have to write one (several inputs of different
kinds). Everything else is left to gradlint's input inference, which is part of what the zoo tests.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ZooModel:
    family: str  # torchvision | timm | transformers (the package it needs)
    group: str  # the architecture family, for the report's tables
    name: str
    source: str  # the target file's text; the target is ``<file>::build``

    @property
    def id(self) -> str:
        return f"{self.family}/{self.name}"

    @property
    def file_stem(self) -> str:
        return re.sub(r"\W", "_", f"{self.family}_{self.name}")


# -- torchvision: every classification model --------------------------------------------------

def _torchvision_group(name: str) -> str:
    for prefix in ("resnext", "wide_resnet", "efficientnet_v2", "regnet", "mobilenet", "shufflenet", "swin_v2"):
        if name.startswith(prefix):
            return prefix
    return re.match(r"[a-z]+", name).group(0)


def torchvision_models() -> list[ZooModel]:
    import torchvision

    out = []
    for name in sorted(torchvision.models.list_models(module=torchvision.models)):
        src = f"""
            import torchvision


            def build():
                return torchvision.models.get_model({name!r}, weights=None)
        """
        out.append(ZooModel("torchvision", _torchvision_group(name), name, textwrap.dedent(src).lstrip()))
    return out


# -- timm: families of CNNs, ViTs, MLP-mixers and hybrids -------------------------------------
# Small variants mostly (the zoo runs on shared CPUs); a few large ones take the meta-only path.

TIMM_GROUPS: dict[str, str] = {
    "resnet": "resnet18 resnet26 resnet50 resnet101 resnet50d resnet18d resnet10t resnetrs50 resnetv2_50 "
              "resnetv2_50x1_bit resnext50_32x4d seresnet50 seresnext26d_32x4d ecaresnet26t skresnet18 "
              "res2net50_26w_4s resnest14d wide_resnet50_2 resnetblur50 tresnet_m",
    "efficient/mobile CNN": "efficientnet_b0 efficientnet_b3 efficientnet_lite0 efficientnetv2_rw_s tf_efficientnet_b0 "
                            "tf_efficientnetv2_b0 mobilenetv2_100 mobilenetv3_large_100 mobilenetv3_small_050 "
                            "mobilenetv4_conv_small mixnet_s mnasnet_100 fbnetc_100 spnasnet_100 hardcorenas_a "
                            "lcnet_050 tinynet_a ghostnet_100 ghostnetv2_100 rexnet_100",
    "convnext": "convnext_atto convnext_tiny convnext_small convnextv2_atto convnextv2_nano",
    "regnet": "regnetx_002 regnetx_032 regnety_004 regnety_016 regnetz_b16 regnetv_040",
    "vit": "vit_tiny_patch16_224 vit_small_patch16_224 vit_base_patch16_224 vit_base_patch32_224 "
           "vit_small_patch16_384 vit_base_patch16_clip_224 vit_medium_patch16_gap_256 vit_relpos_small_patch16_224 "
           "vit_small_patch14_dinov2 vit_base_patch16_siglip_224 vit_tiny_r_s16_p8_224 vit_small_r26_s32_224 "
           "eva02_tiny_patch14_224 flexivit_small",
    "deit": "deit_tiny_patch16_224 deit_small_distilled_patch16_224 deit3_small_patch16_224",
    "swin": "swin_tiny_patch4_window7_224 swin_small_patch4_window7_224 swinv2_tiny_window8_256 swinv2_cr_tiny_224",
    "beit": "beit_base_patch16_224 beitv2_base_patch16_224",
    "mlp": "mixer_s16_224 mixer_b16_224 gmixer_12_224 gmlp_ti16_224 resmlp_12_224 resmlp_24_224",
    "convmixer": "convmixer_768_32 convmixer_1024_20_ks9_p14",
    "levit": "levit_128s levit_conv_128s levit_256",
    "mobilevit": "mobilevit_xxs mobilevit_s mobilevitv2_050",
    "coat/coatnet": "coat_tiny coat_lite_tiny coatnet_0_rw_224 coatnet_nano_rw_224",
    "maxvit": "maxvit_tiny_rw_224 maxvit_nano_rw_256 maxxvit_rmlp_nano_rw_256",
    "cait/xcit": "cait_xxs24_224 cait_xxs36_224 xcit_nano_12_p16_224 xcit_tiny_12_p8_224",
    "metaformer": "poolformer_s12 poolformerv2_s12 convformer_s18 caformer_s18",
    "reparameterizable": "repvgg_a0 repvgg_b0 repvit_m1 mobileone_s0 fastvit_t8",
    "densenet/dpn": "densenet121 densenetblur121d dpn68 dpn92",
    "inception/xception": "inception_v3 inception_v4 inception_resnet_v2 xception41 xception65p",
    "normalizer-free": "nfnet_l0 nf_resnet50 nf_regnet_b1 dm_nfnet_f0 eca_nfnet_l0",
    "vgg": "vgg11 vgg16_bn",
    "other hybrids": "pit_ti_224 pit_s_distilled_224 twins_svt_small twins_pcpvt_small pvt_v2_b0 crossvit_tiny_240 "
                     "tnt_s_patch16_224 convit_tiny nest_tiny volo_d1_224 visformer_tiny efficientformer_l1 "
                     "efficientformerv2_s0 edgenext_xx_small efficientvit_b0 efficientvit_m0 focalnet_tiny_srf "
                     "davit_tiny gcvit_xxtiny hiera_tiny_224 mvitv2_tiny sequencer2d_s tiny_vit_5m_224 "
                     "inception_next_tiny samvit_base_patch16 sam2_hiera_tiny",
    "other CNNs": "hrnet_w18_small dla34 cspdarknet53 cspresnet50 darknet53 selecsls42b vovnet39a ese_vovnet19b_dw "
                  "hgnet_tiny hgnetv2_b0 gernet_s botnet26t_256 halonet26t lambda_resnet26t mambaout_femto "
                  "starnet_s1 rdnet_tiny",
}


def timm_models() -> list[ZooModel]:
    out = []
    for group, names in TIMM_GROUPS.items():
        for name in names.split():
            src = f"""
                import timm


                def build():
                    return timm.create_model({name!r}, pretrained=False)
            """
            out.append(ZooModel("timm", group, name, textwrap.dedent(src).lstrip()))
    return out


# -- transformers: small configs of encoders, decoders, encoder-decoders, vision, multimodal ---

_TEXT = "vocab_size=1000"
_BERTISH = f"hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, {_TEXT}"
_LLAMAISH = (f"hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, "
             f"intermediate_size=128, {_TEXT}")
_BARTISH = (f"d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4, "
            f"encoder_ffn_dim=128, decoder_ffn_dim=128, {_TEXT}")
_VIT = "hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=32, patch_size=8"

# (group, model class, config class, config arguments, example_inputs body or None)
TRANSFORMERS_SPECS: list[tuple[str, str, str, str, str | None]] = [
    ("encoder", "BertModel", "BertConfig", _BERTISH, None),
    ("encoder", "RobertaModel", "RobertaConfig", _BERTISH, None),
    ("encoder", "XLMRobertaModel", "XLMRobertaConfig", _BERTISH, None),
    ("encoder", "DistilBertModel", "DistilBertConfig", f"dim=64, n_layers=2, n_heads=4, hidden_dim=128, {_TEXT}", None),
    ("encoder", "AlbertModel", "AlbertConfig", f"embedding_size=32, {_BERTISH}", None),
    ("encoder", "ElectraModel", "ElectraConfig", f"embedding_size=32, {_BERTISH}", None),
    ("encoder", "DebertaV2Model", "DebertaV2Config", _BERTISH, None),
    ("encoder", "MPNetModel", "MPNetConfig", _BERTISH, None),
    ("decoder", "GPT2LMHeadModel", "GPT2Config", f"n_embd=64, n_layer=2, n_head=4, {_TEXT}", None),
    ("decoder", "GPTNeoForCausalLM", "GPTNeoConfig",
     f"hidden_size=64, num_layers=2, num_heads=4, attention_types=[[['global', 'local'], 1]], {_TEXT}", None),
    ("decoder", "GPTJForCausalLM", "GPTJConfig", f"n_embd=64, n_layer=2, n_head=4, rotary_dim=8, {_TEXT}", None),
    ("decoder", "GPTNeoXForCausalLM", "GPTNeoXConfig", _BERTISH, None),
    ("decoder", "OPTForCausalLM", "OPTConfig",
     f"hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=128, word_embed_proj_dim=64, {_TEXT}", None),
    ("decoder", "BloomForCausalLM", "BloomConfig", f"hidden_size=64, n_layer=2, n_head=4, {_TEXT}", None),
    ("decoder", "FalconForCausalLM", "FalconConfig", f"hidden_size=64, num_hidden_layers=2, num_attention_heads=4, {_TEXT}", None),
    ("decoder", "LlamaForCausalLM", "LlamaConfig", _LLAMAISH, None),
    ("decoder", "MistralForCausalLM", "MistralConfig", _LLAMAISH, None),
    ("decoder", "MixtralForCausalLM", "MixtralConfig", f"{_LLAMAISH}, num_local_experts=4, num_experts_per_tok=2", None),
    ("decoder", "Qwen2ForCausalLM", "Qwen2Config", _LLAMAISH, None),
    ("decoder", "Qwen3ForCausalLM", "Qwen3Config", f"{_LLAMAISH}, head_dim=16", None),
    ("decoder", "PhiForCausalLM", "PhiConfig", _BERTISH, None),
    ("decoder", "Phi3ForCausalLM", "Phi3Config", f"{_LLAMAISH}, pad_token_id=0", None),
    ("decoder", "GemmaForCausalLM", "GemmaConfig", f"{_LLAMAISH}, head_dim=16", None),
    ("decoder", "Gemma2ForCausalLM", "Gemma2Config", f"{_LLAMAISH}, head_dim=16", None),
    ("encoder-decoder", "T5ForConditionalGeneration", "T5Config",
     f"d_model=64, d_ff=128, d_kv=16, num_layers=2, num_decoder_layers=2, num_heads=4, {_TEXT}", None),
    ("encoder-decoder", "BartForConditionalGeneration", "BartConfig", _BARTISH, None),
    ("encoder-decoder", "MarianMTModel", "MarianConfig", f"{_BARTISH}, decoder_vocab_size=1000, pad_token_id=0", None),
    ("encoder-decoder", "PegasusForConditionalGeneration", "PegasusConfig", _BARTISH, None),
    ("vision", "ViTForImageClassification", "ViTConfig", _VIT, None),
    ("vision", "DeiTForImageClassification", "DeiTConfig", _VIT, None),
    ("vision", "BeitForImageClassification", "BeitConfig", _VIT, None),
    ("vision", "Dinov2Model", "Dinov2Config", _VIT, None),
    ("vision", "SwinForImageClassification", "SwinConfig",
     "image_size=32, patch_size=2, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4", None),
    ("vision", "ConvNextForImageClassification", "ConvNextConfig", "hidden_sizes=[16, 32], depths=[1, 1], num_stages=2", None),
    ("vision", "ConvNextV2ForImageClassification", "ConvNextV2Config", "hidden_sizes=[16, 32], depths=[1, 1], num_stages=2", None),
    ("vision", "ResNetForImageClassification", "ResNetConfig", "embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1]", None),
    ("vision", "RegNetForImageClassification", "RegNetConfig", "embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], groups_width=8", None),
    ("vision", "MobileViTForImageClassification", "MobileViTConfig", "image_size=64, hidden_sizes=[32, 48, 64], neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 32]", None),
    ("vision", "SegformerForImageClassification", "SegformerConfig", "num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[16, 32], num_attention_heads=[1, 2], patch_sizes=[7, 3], strides=[4, 2], mlp_ratios=[2, 2]", None),
    ("multimodal", "CLIPModel", "CLIPConfig",
     "text_config=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=1000), "
     "vision_config=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, "
     "image_size=32, patch_size=8), projection_dim=32",
     'return {"input_ids": torch.randint(0, 1000, (2, 16)), "pixel_values": torch.randn(2, 3, 32, 32)}'),
    ("audio", "Wav2Vec2Model", "Wav2Vec2Config",
     "hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, conv_dim=(32, 32, 32), "
     "conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4", None),
    ("audio", "WhisperForConditionalGeneration", "WhisperConfig",
     "d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4, "
     "encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=16, max_source_positions=32, vocab_size=1000, "
     "pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1",
     'return {"input_features": torch.randn(2, 16, 64), "decoder_input_ids": torch.randint(0, 1000, (2, 8))}'),
]


def transformers_models() -> list[ZooModel]:
    out = []
    for group, model_cls, config_cls, args, example in TRANSFORMERS_SPECS:
        lines = ["import torch", f"from transformers import {config_cls}, {model_cls}", "", "",
                 "def build():", f"    return {model_cls}({config_cls}({args}))"]
        if example:
            lines += ["", "", "def example_inputs():", f"    {example}"]
        out.append(ZooModel("transformers", group, model_cls, "\n".join(lines) + "\n"))
    return out


# family -> (the package it needs, the catalogue)
FAMILIES: dict[str, tuple[str, Callable[[], list[ZooModel]]]] = {
    "torchvision": ("torchvision", torchvision_models),
    "timm": ("timm", timm_models),
    "transformers": ("transformers", transformers_models),
}


def available(family: str) -> bool:
    return importlib.util.find_spec(FAMILIES[family][0]) is not None


def catalog(families: list[str] | None = None) -> tuple[list[ZooModel], list[str]]:
    """The models of the families whose package is importable, and the families skipped."""
    models, skipped = [], []
    for family in families or list(FAMILIES):
        if not available(family):
            skipped.append(family)
            continue
        models += FAMILIES[family][1]()
    return models, skipped
