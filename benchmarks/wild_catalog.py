"""The wild corpus: which files to lint, and how a user would call gradlint on each.

Three sections:

- **library** files (``benchmarks/wild/*.py``): our own user-style model files, each built on one
  pip-installable model library the way its README shows it (small configs, random init);
- **patterns** (``benchmarks/wild/patterns/*.py``): our own hand-written models for patterns
  gradlint must cope with (frozen backbones, weight norm, jit, hand-unrolled cells, ...), some
  healthy and some broken by design (``expect``);
- **repo** files: real model files of public GitHub repositories, never copied into this
  repository: ``wild.py`` writes them into a temporary folder at run time from local mirrors
  (``/work/.mirror/OWNER+NAME/repo``, bare git directories; the whole tree at HEAD, so
  package imports work as in a clone) and skips the entry when the mirror
  is absent.

Every entry has a ``first`` try: the command a user types first from the README, nearly always
plain ``gradlint FILE``; and an optional ``second`` try: what they would write next after reading
the first error (``FILE::build``, ``'FILE::Net(Config())'``, ``--input-shape ...``). ``{F}`` in
the arguments is replaced by the file's path as the user would type it (relative to the folder
the command runs in: the file's folder for our files, the repository root for repo files).

Styles (how the file makes its model), so the report can say which usage gradlint handles:
``wrapper`` an nn.Module subclass with a no-argument constructor; ``factory`` a module-level
function returning the model; ``instance`` a module-level ``model = X(...)``; ``config`` a class
whose constructor needs a config object or positional arguments; ``script`` a training script
with argparse or data loading at module level; ``main`` a model class plus an
``if __name__ == "__main__":`` training loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "wild"
MIRRORS = Path("/work/.mirror")


@dataclass(frozen=True)
class Entry:
    id: str  # "<library>/<name>", unique
    library: str  # the pip package the file needs; "patterns" (torch only); "repo:owner/name"
    file: str  # relative to benchmarks/wild/, or to the repository root for repo entries
    kind: str  # what sort of model, for the report
    style: str  # wrapper | factory | instance | config | script | main
    first: tuple[str, ...] = ("{F}",)
    second: tuple[str, ...] | None = None
    expect: str | None = None  # designed verdict of a pattern file (healthy | vanishing | exploding)
    repo: str | None = None  # repo entries: "owner/name"; its whole tree at HEAD is written out at run time

    @property
    def section(self) -> str:
        return "repo" if self.repo else ("patterns" if self.library == "patterns" else "library")


def _lib(library: str, name: str, file: str, kind: str, style: str, second: tuple[str, ...] | None = None,
         first: tuple[str, ...] = ("{F}",)) -> Entry:
    return Entry(f"{library}/{name}", library, file, kind, style, first, second)


BUILD = ("{F}::build",)
MODEL = ("{F}::model",)

LIBRARY = [
    # vit-pytorch
    _lib("vit-pytorch", "vit", "vit_pytorch_vit.py", "vision transformer", "wrapper",
         ("{F}", "--input-shape", "8,3,64,64")),
    _lib("vit-pytorch", "simple_vit", "vit_pytorch_simple_vit.py", "vision transformer", "factory", BUILD),
    _lib("vit-pytorch", "cait", "vit_pytorch_cait.py", "vision transformer (class-attention, LayerScale)",
         "instance", MODEL),
    _lib("vit-pytorch", "deepvit", "vit_pytorch_deepvit.py", "vision transformer (re-attention)", "wrapper"),
    _lib("vit-pytorch", "mobilevit", "vit_pytorch_mobilevit.py", "hybrid CNN/transformer", "factory",
         ("{F}::build", "--input-shape", "8,3,64,64")),
    _lib("vit-pytorch", "t2t_vit", "vit_pytorch_t2t.py", "vision transformer (tokens-to-token)", "main"),
    # x-transformers
    _lib("x-transformers", "gpt", "xt_gpt.py", "decoder-only LM", "factory", BUILD),
    _lib("x-transformers", "bert_encoder", "xt_bert_encoder.py", "encoder LM (RMSNorm, GLU, rotary)", "wrapper"),
    _lib("x-transformers", "vit", "xt_vit.py", "vision transformer", "instance", MODEL),
    _lib("x-transformers", "enc_dec", "xt_enc_dec.py", "encoder-decoder transformer (returns loss)", "factory",
         BUILD),
    _lib("x-transformers", "autoregressive", "xt_autoregressive.py", "decoder LM in a loss wrapper", "main"),
    # denoising-diffusion-pytorch
    _lib("denoising-diffusion-pytorch", "gaussian_diffusion", "ddpm_gaussian_diffusion.py",
         "diffusion U-Net + DDPM loss", "factory", BUILD),
    _lib("denoising-diffusion-pytorch", "unet", "ddpm_unet.py", "diffusion U-Net (x, t)", "wrapper"),
    _lib("denoising-diffusion-pytorch", "unet1d", "ddpm_unet1d.py", "1-d diffusion U-Net + loss", "factory", BUILD),
    # segmentation-models-pytorch
    _lib("segmentation-models-pytorch", "unet_resnet34", "smp_unet.py", "segmentation U-Net (ResNet-34)",
         "instance", MODEL),
    _lib("segmentation-models-pytorch", "fpn_resnet18", "smp_fpn.py", "segmentation FPN (ResNet-18)", "wrapper"),
    _lib("segmentation-models-pytorch", "deeplabv3plus", "smp_deeplabv3plus.py", "segmentation DeepLabV3+",
         "factory", BUILD),
    _lib("segmentation-models-pytorch", "linknet_train", "smp_linknet_train.py", "segmentation Linknet (MobileNetV2)",
         "script", MODEL),
    _lib("segmentation-models-pytorch", "pspnet_config", "smp_pspnet_config.py", "segmentation PSPNet", "config",
         ("{F}::SegModel(SegConfig())",)),
    # monai
    _lib("monai", "unet", "monai_unet.py", "medical residual U-Net", "wrapper"),
    _lib("monai", "basicunet", "monai_basicunet.py", "medical U-Net", "factory", BUILD),
    _lib("monai", "densenet121", "monai_densenet.py", "DenseNet-121 (2-d)", "instance", MODEL),
    _lib("monai", "unetr", "monai_unetr.py", "ViT encoder + conv decoder", "wrapper"),
    _lib("monai", "segresnet", "monai_segresnet.py", "segmentation ResNet (GroupNorm)", "main"),
    _lib("monai", "varautoencoder", "monai_autoencoder.py", "variational autoencoder", "factory", BUILD),
    # diffusers
    _lib("diffusers", "unet2d", "diffusers_unet2d.py", "DDPM U-Net with attention", "wrapper"),
    _lib("diffusers", "autoencoder_kl", "diffusers_autoencoderkl.py", "latent-diffusion VAE", "instance",
         ("{F}::vae",)),
    _lib("diffusers", "unet2d_condition", "diffusers_unet2d_condition.py", "text-conditional U-Net", "factory",
         BUILD),
    _lib("diffusers", "dit", "diffusers_dit.py", "diffusion transformer (adaLN-Zero)", "factory", BUILD),
    # stable-baselines3
    _lib("stable-baselines3", "ppo_cartpole", "sb3_ppo_cartpole.py", "actor-critic MLP policy", "instance", MODEL),
    _lib("stable-baselines3", "dqn_qnet", "sb3_dqn_qnet.py", "Q-network MLP", "factory", BUILD),
    _lib("stable-baselines3", "sac_actor", "sb3_sac_actor.py", "squashed Gaussian actor", "wrapper"),
    _lib("stable-baselines3", "nature_cnn", "sb3_nature_cnn.py", "Atari CNN + value head", "wrapper"),
    # torch-geometric
    _lib("torch-geometric", "gcn_readme", "pyg_gcn_readme.py", "GCN on a Data object", "wrapper"),
    _lib("torch-geometric", "gcn_planetoid", "pyg_planetoid_script.py", "GCN, dataset loaded at import", "script",
         ("{F}::GCN",)),
    _lib("torch-geometric", "gat", "pyg_gat.py", "graph attention network", "factory", BUILD),
    _lib("torch-geometric", "gin", "pyg_gin.py", "GIN graph classifier", "wrapper"),
    _lib("torch-geometric", "graphsage", "pyg_graphsage.py", "GraphSAGE", "instance", MODEL),
    # pytorch-tabnet
    _lib("pytorch-tabnet", "tabnet_network", "tabnet_network.py", "TabNet (attentive tabular)", "factory", BUILD),
    _lib("pytorch-tabnet", "tabnet_classifier", "tabnet_classifier.py", "scikit-learn-style wrapper", "instance",
         ("{F}::clf",)),
    # lightning
    _lib("lightning", "autoencoder", "lightning_autoencoder.py", "LightningModule autoencoder", "config",
         ("{F}::LitAutoEncoder(encoder, decoder)",)),
    _lib("lightning", "cnn", "lightning_cnn.py", "LightningModule CNN (BatchNorm)", "wrapper"),
    # torchaudio
    _lib("torchaudio", "conv_tasnet", "torchaudio_convtasnet.py", "source separation TCN", "factory", BUILD),
    _lib("torchaudio", "wav2letter", "torchaudio_wav2letter.py", "1-d conv acoustic model", "wrapper",
         ("{F}", "--input-shape", "8,13,200")),
    _lib("torchaudio", "deepspeech", "torchaudio_deepspeech.py", "FC + BiRNN acoustic model", "instance", MODEL),
    _lib("torchaudio", "conformer", "torchaudio_conformer.py", "Conformer encoder", "factory", BUILD),
    _lib("torchaudio", "wav2vec2", "torchaudio_wav2vec2.py", "wav2vec 2.0 (conv extractor + transformer)",
         "wrapper"),
    # lucidrains' other packages
    _lib("performer-pytorch", "performer_lm", "performer_lm.py", "FAVOR+ attention LM", "factory", BUILD),
    _lib("linear-attention-transformer", "lm", "linear_attention_lm.py", "linear attention LM", "instance", MODEL),
    _lib("perceiver-pytorch", "perceiver", "perceiver_classifier.py", "Perceiver (latent cross-attention)",
         "wrapper"),
    _lib("mlp-mixer-pytorch", "mlp_mixer", "mlp_mixer.py", "MLP-Mixer", "instance", MODEL),
    _lib("reformer-pytorch", "reformer_lm", "reformer_lm.py", "Reformer (LSH, reversible)", "factory", BUILD),
    _lib("vector-quantize-pytorch", "vqvae", "vqvae.py", "VQ-VAE around VectorQuantize", "wrapper"),
    # kornia
    _lib("kornia", "hardnet", "kornia_hardnet.py", "patch descriptor CNN", "instance", ("{F}::descriptor",)),
    _lib("kornia", "sosnet", "kornia_sosnet.py", "patch descriptor CNN + head", "wrapper"),
    # efficientnet-pytorch, pretrainedmodels, resnest
    _lib("efficientnet-pytorch", "efficientnet_b0", "efficientnet_b0.py", "EfficientNet-B0", "factory", BUILD),
    _lib("pretrainedmodels", "bninception", "pretrainedmodels_bninception.py", "BN-Inception", "wrapper"),
    _lib("pretrainedmodels", "xception", "pretrainedmodels_xception.py", "Xception", "instance", MODEL),
    _lib("resnest", "resnest50", "resnest50.py", "ResNeSt-50 (split attention)", "wrapper"),
    # nflows, pykan, rtdl, gpytorch
    _lib("nflows", "maf", "nflows_maf.py", "masked autoregressive flow (NLL)", "wrapper"),
    _lib("pykan", "kan", "pykan_kan.py", "Kolmogorov-Arnold network", "factory", BUILD),
    _lib("rtdl-revisiting-models", "mlp", "rtdl_mlp.py", "tabular MLP", "factory", BUILD),
    _lib("rtdl-revisiting-models", "resnet", "rtdl_resnet.py", "tabular ResNet", "instance", MODEL),
    _lib("rtdl-revisiting-models", "ft_transformer", "rtdl_ft_transformer.py", "FT-Transformer", "wrapper"),
    _lib("gpytorch", "dkl_features", "gpytorch_dkl.py", "deep-kernel-learning feature MLP", "wrapper"),
    # timm, transformers, torchvision (user-style files; the zoo covers the catalogs)
    _lib("timm", "resnet18_script", "timm_resnet_script.py", "ResNet-18", "instance", MODEL),
    _lib("timm", "convnext_atto", "timm_convnext.py", "ConvNeXt-Atto + head", "wrapper"),
    _lib("timm", "vit_tiny", "timm_vit_tiny.py", "ViT-Tiny", "factory", BUILD),
    _lib("transformers", "gpt2", "hf_gpt2.py", "GPT-2 LM", "factory", BUILD),
    _lib("transformers", "bert_classifier", "hf_bert_classifier.py", "BERT classifier (config argument)", "config",
         ("{F}::BertClassifier(config)",)),
    _lib("transformers", "t5", "hf_t5.py", "T5 encoder-decoder", "instance", MODEL),
    _lib("transformers", "llama", "hf_llama.py", "Llama LM (RMSNorm, SwiGLU)", "wrapper"),
    _lib("transformers", "vit", "hf_vit.py", "ViT classifier", "factory", BUILD),
    _lib("torchvision", "resnet18_finetune", "tv_resnet18_finetune.py", "ResNet-18, replaced head", "instance",
         MODEL),
    _lib("torchvision", "vgg11_bn", "tv_vgg11_bn.py", "VGG-11 with BatchNorm", "wrapper"),
    _lib("torchvision", "mobilenet_v3_small", "tv_mobilenet_v3.py", "MobileNetV3-Small", "factory", BUILD),
    # braindecode, speechbrain, asteroid, torchgeo
    _lib("braindecode", "eegnet", "braindecode_eegnet.py", "EEGNet", "factory", BUILD),
    _lib("braindecode", "deep4", "braindecode_deep4.py", "Deep4Net", "instance", MODEL),
    _lib("braindecode", "shallow_fbcsp", "braindecode_shallow.py", "ShallowFBCSPNet", "wrapper"),
    _lib("speechbrain", "ecapa_tdnn", "speechbrain_ecapa.py", "ECAPA-TDNN speaker embedder", "wrapper"),
    _lib("speechbrain", "crdnn", "speechbrain_crdnn.py", "CRDNN acoustic model", "factory", BUILD),
    _lib("asteroid", "dprnn_tasnet", "asteroid_dprnn.py", "dual-path RNN separation", "factory", BUILD),
    _lib("torchgeo", "fcn", "torchgeo_fcn.py", "FCN for multispectral segmentation", "instance", MODEL),
    # RL and time series
    _lib("tianshou", "dqn_net", "tianshou_dqn_net.py", "Q-network MLP", "instance", ("{F}::net",)),
    _lib("torchrl", "mlp_value", "torchrl_mlp_value.py", "tanh MLP value network", "wrapper"),
    _lib("tsai", "inception_time", "tsai_inceptiontime.py", "InceptionTime time-series CNN", "factory", BUILD),
    _lib("ultralytics", "yolov8n", "ultralytics_yolov8n.py", "YOLOv8n detector", "factory", BUILD),
]


def _pat(name: str, kind: str, style: str, expect: str | None, second: tuple[str, ...] | None = None) -> Entry:
    return Entry(f"patterns/{name}", "patterns", f"patterns/{name}.py", kind, style, ("{F}",), second, expect)


PATTERNS = [
    _pat("he_relu_mlp30", "30-layer He-init ReLU MLP", "wrapper", "healthy", ("{F}", "--input-shape", "8,128")),
    _pat("vgg_nobn", "VGG-11 without BatchNorm, He init", "wrapper", "healthy"),
    _pat("lenet5", "LeNet-5, tanh, default init", "main", "healthy", ("{F}", "--input-shape", "8,1,28,28")),
    _pat("edsr_residual_scaling", "BN-free residual SR generator, residual scaling 0.1", "wrapper", "healthy"),
    _pat("weightnorm_vocoder", "weight-normalized 1-d conv vocoder", "wrapper", "healthy"),
    _pat("unet_fnormalize", "U-Net normalized by F.normalize / RMSNorm", "wrapper", "healthy"),
    _pat("lstmcell_loop", "LSTMCell unrolled over 50 steps", "wrapper", None),
    _pat("tiny_init_underflow", "depth-50 tanh MLP, std 1e-3 init (gradient underflows)", "wrapper", "vanishing"),
    _pat("functional_conv_weights", "weights in custom modules calling F.conv2d", "wrapper", "healthy"),
    _pat("jit_submodule", "residual MLP with torch.jit.script-ed blocks", "wrapper", "healthy"),
    _pat("frozen_backbone", "frozen ResNet-18 backbone + trainable head", "wrapper", "healthy"),
    _pat("instancenorm_generator", "CycleGAN-style InstanceNorm generator", "wrapper", "healthy"),
    _pat("weight_standardized", "weight-standardized convs + GroupNorm (BiT)", "wrapper", "healthy"),
    _pat("convnextv2_grn", "ConvNeXt-V2 blocks with GRN", "wrapper", None),
    _pat("einops_patch_embed", "ViT with einops Rearrange patch embedding", "wrapper", "healthy"),
    _pat("sigmoid_mlp20", "20-layer sigmoid MLP, default init", "wrapper", "vanishing"),
    _pat("bn_relu_plain50", "plain 50-layer Linear+BN+ReLU stack", "wrapper", "exploding"),
    _pat("elman_rnn100", "tanh RNN read at the last of 100 steps", "wrapper", None),
    _pat("argparse_script", "CNN in a script with module-level argparse", "script", None, ("{F}::Net",)),
    _pat("config_dataclass_gpt", "GPT taking a config dataclass", "config", "healthy", ("{F}::GPT(GPTConfig())",)),
    _pat("module_level_instance", "nn.Sequential MLP as a module-level instance", "instance", "healthy", MODEL),
    _pat("factory_only", "SiLU/LayerNorm MLP from make_model()", "factory", "healthy", ("{F}::make_model",)),
]


def _repo(repo: str, name: str, file: str, kind: str, style: str, second: tuple[str, ...] | None = None) -> Entry:
    short = repo.split("/")[1]
    return Entry(f"{short}/{name}", f"repo:{repo}", file, kind, style, ("{F}",), second, None, repo)


REPOS = [
    _repo("karpathy/nanoGPT", "model", "model.py", "GPT-2 (config dataclass)", "config",
          ("{F}::GPT(GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=512))",)),
    _repo("karpathy/nanoGPT", "train", "train.py", "training script (configurator, data at import)", "script"),
    _repo("karpathy/minGPT", "model", "mingpt/model.py", "GPT (CfgNode config)", "config",
          ("{F}::GPT(GPT.get_default_config())",)),
    _repo("kuangliu/pytorch-cifar", "resnet", "models/resnet.py", "CIFAR ResNet-18", "factory",
          ("{F}::ResNet18",)),
    _repo("kuangliu/pytorch-cifar", "vgg", "models/vgg.py", "CIFAR VGG-16 (BN)", "config",
          ("{F}::VGG('VGG16')",)),
    _repo("kuangliu/pytorch-cifar", "mobilenetv2", "models/mobilenetv2.py", "CIFAR MobileNetV2", "wrapper",
          ("{F}", "--input-shape", "8,3,32,32")),
    _repo("kuangliu/pytorch-cifar", "densenet", "models/densenet.py", "CIFAR DenseNet", "factory",
          ("{F}::densenet_cifar",)),
    _repo("kuangliu/pytorch-cifar", "dla", "models/dla.py", "CIFAR DLA", "wrapper",
          ("{F}", "--input-shape", "8,3,32,32")),
    _repo("kuangliu/pytorch-cifar", "lenet", "models/lenet.py", "CIFAR LeNet", "wrapper",
          ("{F}", "--input-shape", "8,3,32,32")),
    _repo("milesial/Pytorch-UNet", "unet", "unet/unet_model.py", "U-Net (BN)", "config",
          ("{F}::UNet(3, 2)",)),
    _repo("jik876/hifi-gan", "models", "models.py", "HiFi-GAN generator + discriminators", "config"),
    _repo("AntixK/PyTorch-VAE", "vanilla_vae", "models/vanilla_vae.py", "convolutional VAE", "config",
          ("{F}::VanillaVAE(3, 128)",)),
    _repo("eriklindernoren/PyTorch-GAN", "dcgan", "implementations/dcgan/dcgan.py", "DCGAN training script",
          "script", ("{F}::Generator",)),
    _repo("eriklindernoren/PyTorch-GAN", "cyclegan_models", "implementations/cyclegan/models.py",
          "CycleGAN generator/discriminator", "config", ("{F}::GeneratorResNet((3, 64, 64), 6)",)),
    _repo("eriklindernoren/PyTorch-GAN", "pix2pix_models", "implementations/pix2pix/models.py",
          "pix2pix U-Net generator + PatchGAN", "wrapper"),
    _repo("eriklindernoren/PyTorch-GAN", "esrgan_models", "implementations/esrgan/models.py",
          "ESRGAN RRDB generator", "config", ("{F}::GeneratorRRDB(3, num_res_blocks=4)",)),
    _repo("pytorch/examples", "mnist", "mnist/main.py", "MNIST CNN script (argparse in main())", "main"),
    _repo("pytorch/examples", "word_language_model", "word_language_model/model.py", "LSTM / transformer LM",
          "config", ("{F}::RNNModel('LSTM', 1000, 128, 128, 2)",)),
    _repo("pytorch/examples", "super_resolution", "super_resolution/model.py", "ESPCN super-resolution", "config",
          ("{F}::Net(3)",)),
    _repo("pytorch/examples", "fast_neural_style", "fast_neural_style/neural_style/transformer_net.py",
          "style-transfer net (InstanceNorm)", "wrapper"),
    _repo("pytorch/examples", "time_sequence", "time_sequence_prediction/train.py", "LSTMCell sine predictor",
          "main", ("{F}", "--input-shape", "8,100")),
    _repo("pytorch/examples", "actor_critic", "reinforcement_learning/actor_critic.py",
          "actor-critic script (argparse + gym at import)", "script", ("{F}::Policy",)),
    _repo("pytorch/examples", "vae", "vae/main.py", "MNIST VAE script (argparse + data at import)", "script",
          ("{F}::VAE",)),
]

ENTRIES = LIBRARY + PATTERNS + REPOS


def mirror_dir(repo: str) -> Path:
    return MIRRORS / (repo.replace("/", "+")) / "repo"


def check_unique() -> None:
    ids = [e.id for e in ENTRIES]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise SystemExit(f"wild catalog: duplicate ids {sorted(dupes)}")
