"""Downstream models built on the MAE's encoder: a ViT classifier and a linear probe."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .mae import MaskedAutoencoder, ViTEncoder


def encoder_like(mae: MaskedAutoencoder, drop_path: float = 0.0, pretrained: bool = True,
                 learn_positions: bool = False) -> ViTEncoder:
    """A ViT encoder of the MAE encoder's shape, for fine-tuning.

    Args:
        mae: the MAE whose encoder gives the shape (and, with ``pretrained``, the weights, copied exactly).
        drop_path: the stochastic depth rate of the last block (0 at the first, linear in between).
        pretrained: copy the MAE encoder's weights; False leaves a fresh initialisation.
        learn_positions: train the (sin-cos initialised) positions too, as the original MAE fine-tunes them.
    """
    c = mae.config
    enc = ViTEncoder(copy.deepcopy(mae.tokenizer), c["dim"], c["depth"], c["heads"], c["mlp_ratio"],
                     drop_path=drop_path)
    if pretrained:
        enc.load_state_dict(mae.encoder.state_dict())
    enc.pos_embed.requires_grad_(learn_positions or enc.pos_embed.requires_grad)
    return enc


class ViTClassifier(nn.Module):
    """Images (N, C, H, W) -> logits (N, n_classes): mean of the last block's patch features, LayerNorm
    (``fc_norm``), linear head. As in the original MAE's global-pool classifier, the encoder's own final
    LayerNorm is not applied (it stays in the state dict, unused)."""

    def __init__(self, encoder: ViTEncoder, n_classes: int):
        super().__init__()
        self.encoder = encoder
        encoder.norm.requires_grad_(False)  # unused here
        self.fc_norm = nn.LayerNorm(encoder.dim, eps=1e-6)
        self.head = nn.Linear(encoder.dim, n_classes)
        nn.init.trunc_normal_(self.head.weight, std=2e-5)
        nn.init.zeros_(self.head.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> pooled features (N, dim)."""
        tokens = self.encoder(self.encoder.tokenizer.tokenize(x), final_norm=False)  # (N, 1 + L, dim) un-normed
        return self.fc_norm(tokens[:, 1:].mean(dim=1))  # (N, dim) mean of the patches, cls left out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (N, n_classes)

    def layer_of(self, name: str) -> int:
        """Layer id for layer-wise lr decay: embeddings 0, block i -> i + 1, the rest depth + 1."""
        if name.startswith("encoder.blocks."):
            return int(name.split(".")[2]) + 1
        if name.startswith(("encoder.embed", "encoder.cls_token", "encoder.pos_embed")):
            return 0
        return self.encoder.depth + 1


class LinearProbe(nn.Module):
    """The MAE paper's probe: BatchNorm without affine parameters, then a linear layer. (N, D) -> (N, K)."""

    def __init__(self, dim: int, n_classes: int):
        super().__init__()
        self.net = nn.Sequential(nn.BatchNorm1d(dim, affine=False, eps=1e-6), nn.Linear(dim, n_classes))
        nn.init.trunc_normal_(self.net[1].weight, std=0.01)
        nn.init.zeros_(self.net[1].bias)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats)  # (N, D) -> batch-normed -> (N, K)


@torch.no_grad()
def cls_features(encoder: ViTEncoder, x: torch.Tensor, batch_size: int = 256, transform=None) -> torch.Tensor:
    """Frozen ``[cls]`` features of the (normed) encoder, in eval mode and without gradients.

    Args:
        encoder: the encoder, left in eval mode; the features are computed on its device.
        x: images (N, C, H, W), on any device.
        batch_size: images encoded at a time.
        transform: applied to each batch on the encoder's device before tokenizing (e.g. normalisation).

    Returns:
        (N, dim) float32 features on the CPU.
    """
    encoder.eval()
    dev = next(encoder.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(dev)
        xb = transform(xb) if transform else xb
        out.append(encoder(encoder.tokenizer.tokenize(xb))[:, 0].float().cpu())  # (B, dim) the cls token
    return torch.cat(out) if out else torch.zeros(0, encoder.dim)
