"""The masked autoencoder, written once for every tokenizer in :mod:`maelib.tokens`.

Encoder: a linear token embedding, positions (fixed sin-cos, or learned column embeddings for tables),
a ``[cls]`` token and timm transformer blocks, applied to the *visible* tokens only. Decoder: a linear
projection, a learned mask token in every hidden slot, positions again, a few timm blocks and a linear
prediction per token. The loss is the mean squared error over hidden tokens only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from timm.models.vision_transformer import Block
from torch import nn

from .masking import Masking, gather_tokens, random_masking
from .tokens import sincos_1d, sincos_pos_embed


def _positions(tokenizer, dim: int) -> nn.Parameter | torch.Tensor:
    """(1, L, dim) positions: learned for tokenizers that ask for it, fixed sin-cos otherwise (of the
    tokenizer's own ``positions`` where it has them: overlapping patches sit at fractional places)."""
    if tokenizer.learned_positions:
        return nn.Parameter(torch.randn(1, tokenizer.num_tokens, dim) * 0.02)
    at = getattr(tokenizer, "positions", None)
    table = sincos_pos_embed(dim, tokenizer.grid) if at is None else torch.from_numpy(sincos_1d(dim, at)).float()
    return nn.Parameter(table.unsqueeze(0), requires_grad=False)


def _blocks(dim: int, depth: int, heads: int, mlp_ratio: float, drop_path: float = 0.0) -> nn.ModuleList:
    rates = torch.linspace(0, drop_path, depth).tolist() if depth else []
    return nn.ModuleList(
        Block(dim, heads, mlp_ratio, qkv_bias=True, drop_path=r, norm_layer=partial(nn.LayerNorm, eps=1e-6))
        for r in rates
    )


def _init_weights(module: nn.Module) -> None:
    """Xavier-uniform linears and unit LayerNorms, as the original MAE initialises them."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _attend_mask(valid: torch.Tensor | None) -> torch.Tensor | None:
    """(N, K) bool of real tokens -> (N, 1, 1, K) attention mask, or None when every token is real."""
    if valid is None:
        return None
    return valid[:, None, None, :]


class ViTEncoder(nn.Module):
    """Tokens (N, L, token_dim) -> features (N, 1 + K, dim): ``[cls]`` then the K tokens it was given.

    ``keep`` (N, K) selects the tokens to encode (all L when None); ``valid`` (N, K) marks real tokens
    when rows keep different numbers of tokens (padding slots are never attended to).
    The same class is the MAE's encoder and the downstream ViT, so weights move by ``state_dict``.
    ``forward`` returns the features; ``forward_intermediates`` the outputs of chosen blocks.
    """

    def __init__(self, tokenizer, dim: int = 192, depth: int = 12, heads: int = 3, mlp_ratio: float = 4.0, *,
                 drop_path: float = 0.0):
        super().__init__()
        self.tokenizer, self.dim, self.depth = tokenizer, dim, depth
        self.embed = nn.Linear(tokenizer.token_dim, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = _positions(tokenizer, dim)
        self.blocks = _blocks(dim, depth, heads, mlp_ratio, drop_path)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        _init_weights(self)
        nn.init.normal_(self.cls_token, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """The parameters AdamW should not decay: the class token and the positions."""
        return {"cls_token", "pos_embed"}

    def _embed(self, tokens: torch.Tensor, keep: torch.Tensor | None, valid: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first block's input (N, 1 + K, dim) and its attention mask (None when every token is real)."""
        x = self.embed(tokens) + self.pos_embed  # (N, L, dim) embedded, + positions
        if keep is not None:
            x = gather_tokens(x, keep)  # (N, K, dim) the kept tokens only
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (N, 1 + K, dim) cls first
        if valid is None:
            return x, None
        real = torch.cat([valid.new_ones(valid.shape[0], 1), valid], dim=1)  # (N, 1 + K) cls is always real
        return x, _attend_mask(real)  # (N, 1, 1, 1 + K): no token attends to a padding slot

    def forward(self, tokens: torch.Tensor, keep: torch.Tensor | None = None, valid: torch.Tensor | None = None, *,
                final_norm: bool = True) -> torch.Tensor:
        """Encode the kept tokens: -> (N, 1 + K, dim).

        Args:
            tokens: (N, L, token_dim), in the tokenizer's order.
            keep: (N, K) indices of the tokens to encode; None encodes all L.
            valid: (N, K) bool, False at padding slots; None when every slot is real.
            final_norm: apply the final LayerNorm; a global-pool head leaves it off and norms the mean itself.
        """
        x, attn_mask = self._embed(tokens, keep, valid)
        for block in self.blocks:
            x = block(x, attn_mask=attn_mask)  # (N, 1 + K, dim)
        return self.norm(x) if final_norm else x

    def forward_intermediates(self, tokens: torch.Tensor, blocks: Sequence[int], *, keep: torch.Tensor | None = None,
                              valid: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The chosen blocks' outputs, before the final LayerNorm; later blocks are not run.

        Args:
            tokens: (N, L, token_dim), in the tokenizer's order.
            blocks: 1-based block numbers, each in [1, depth].
            keep, valid: as in :meth:`forward`.

        Returns:
            One (N, 1 + K, dim) tensor per entry of ``blocks``, in the order given; block ``depth``'s equals
            ``forward(tokens, keep, valid, final_norm=False)``.
        """
        if not blocks or any(not 1 <= b <= self.depth for b in blocks):
            raise ValueError(f"blocks must be block numbers in [1, {self.depth}], got {tuple(blocks)}")
        wanted, outs = set(blocks), {}
        x, attn_mask = self._embed(tokens, keep, valid)
        for i, block in zip(range(1, max(blocks) + 1), self.blocks):
            x = block(x, attn_mask=attn_mask)  # (N, 1 + K, dim)
            if i in wanted:
                outs[i] = x
        return [outs[b] for b in blocks]


class MaskedAutoencoder(nn.Module):
    """MAE over any tokenizer: ``loss, pred, mask = mae(x, mask_ratio)``.

    x: a batch in the tokenizer's input layout (images (N, C, H, W), series (N, T, C), tables (N, F)).
    pred: (N, L, token_dim) predictions for every token; mask: (N, L), 1 = hidden.
    ``norm_target`` normalises each target token by its own mean and variance (MAE's norm_pix_loss).
    The encoder's shape comes first, everything else by keyword: ``MaskedAutoencoder(tok, **size)`` with a
    named size of :data:`maelib.profiles.MAE_SIZES`.
    """

    def __init__(self, tokenizer, dim: int = 192, depth: int = 12, heads: int = 3, *, decoder_dim: int = 128,
                 decoder_depth: int = 4, decoder_heads: int = 4, mlp_ratio: float = 4.0, norm_target: bool = False):
        super().__init__()
        self.tokenizer = tokenizer
        self.norm_target = norm_target
        self.config = dict(dim=dim, depth=depth, heads=heads, decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                           decoder_heads=decoder_heads, mlp_ratio=mlp_ratio, norm_target=norm_target)
        self.encoder = ViTEncoder(tokenizer, dim, depth, heads, mlp_ratio)
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos = _positions(tokenizer, decoder_dim)
        self.decoder_blocks = _blocks(decoder_dim, decoder_depth, decoder_heads, mlp_ratio)
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, tokenizer.token_dim)
        _init_weights(nn.ModuleList([self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred]))
        nn.init.normal_(self.mask_token, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """The decoder's parameters AdamW should not decay (the encoder names its own)."""
        return {"mask_token", "decoder_pos"}

    def forward_encoder(self, tokens: torch.Tensor, masking: Masking) -> torch.Tensor:
        """(N, L, token_dim) -> latent (N, 1 + K, dim) of the K visible tokens only (K = masking.keep's width)."""
        return self.encoder(tokens, keep=masking.keep, valid=masking.valid)  # hidden tokens never enter

    def forward_decoder(self, latent: torch.Tensor, masking: Masking) -> torch.Tensor:
        """Latent (N, 1 + K, dim) -> predictions (N, L, token_dim) in the original token order (Dd: decoder_dim)."""
        x = self.decoder_embed(latent[:, 1:])  # (N, K, Dd) visible, cls held aside
        n, k, d = x.shape
        if masking.valid is not None:  # padding slots -> mask token
            x = torch.where(masking.valid.unsqueeze(-1), x, self.mask_token.to(x.dtype).expand(n, k, d))
        length = masking.restore.shape[1]
        hidden = self.mask_token.to(x.dtype).expand(n, length - k, d)  # (N, L - K, Dd) one per hidden slot
        x = torch.cat([x, hidden], dim=1)  # (N, L, Dd) kept, then hidden: still shuffled
        x = gather_tokens(x, masking.restore) + self.decoder_pos  # (N, L, Dd) unshuffled, + positions
        x = torch.cat([self.decoder_embed(latent[:, :1]), x], dim=1)  # (N, 1 + L, Dd) cls back in front
        for block in self.decoder_blocks:
            x = block(x)  # (N, 1 + L, Dd)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]  # (N, L, token_dim), cls dropped

    def target(self, tokens: torch.Tensor) -> torch.Tensor:
        """What the decoder learns to predict: the tokens, or each token normalised by its own mean and variance."""
        if not self.norm_target:
            return tokens
        mean, var = tokens.mean(dim=-1, keepdim=True), tokens.var(dim=-1, keepdim=True)
        return (tokens - mean) / (var + 1e-6) ** 0.5

    def loss(self, tokens: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over hidden tokens only: tokens, pred (N, L, D), mask (N, L) -> scalar."""
        per_token = ((pred.float() - self.target(tokens).float()) ** 2).mean(dim=-1)  # (N, L), in float32
        return (per_token * mask).sum() / mask.sum().clamp(min=1)  # mean over hidden tokens

    def forward(self, x: torch.Tensor, mask_ratio: float = 0.75, masking: Masking | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hide tokens, encode the rest, predict every token and score the hidden ones.

        Args:
            x: a batch in the tokenizer's input layout.
            mask_ratio: the share of tokens hidden when ``masking`` is None.
            masking: the tokens to hide; None draws ``mask_ratio`` of them at random.
            generator: draws that random masking (the global generator when None).

        Returns:
            ``(loss, pred, mask)``: the scalar loss, (N, L, token_dim) predictions, the (N, L) mask (1 = hidden).
        """
        tokens = self.tokenizer.tokenize(x)  # (N, L, token_dim)
        if masking is None:
            masking = random_masking(tokens.shape[0], tokens.shape[1], mask_ratio, tokens.device, generator)
        latent = self.forward_encoder(tokens, masking)  # (N, 1 + K, dim)
        pred = self.forward_decoder(latent, masking)  # (N, L, token_dim)
        return self.loss(tokens, pred, masking.mask), pred, masking.mask

    def reconstruct(self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions back in input space: (reconstruction, reconstruction with visible tokens pasted back).

        With a normalised target, each predicted token is de-normalised with the mean and variance of the
        image's *visible* tokens (what the encoder saw), never with the hidden token's own statistics.
        """
        tokens = self.tokenizer.tokenize(x)  # (N, L, token_dim)
        m = mask.unsqueeze(-1).to(pred.dtype)  # (N, L, 1), 1 = hidden
        if self.norm_target:
            vis = 1 - m
            n_vis = vis.sum(1, keepdim=True).clamp(min=1)  # (N, 1, 1) visible tokens per row
            mean = (tokens.mean(-1, keepdim=True) * vis).sum(1, keepdim=True) / n_vis  # (N, 1, 1) over visible only
            var = (tokens.var(-1, keepdim=True) * vis).sum(1, keepdim=True) / n_vis
            pred = pred * (var + 1e-6) ** 0.5 + mean  # back to the input's scale
        pasted = tokens * (1 - m) + pred * m  # visible tokens as they were, hidden ones predicted
        return self.tokenizer.untokenize(pred), self.tokenizer.untokenize(pasted)


LEARNED = 0.7  # an MAE has learned when its held-out loss is at most this share of the flat predictor's


@torch.no_grad()
def flat_fill(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The flat predictor: targets (N, L, D) and mask (N, L), 1 = hidden -> (N, L, D), every token the mean
    of its sample's visible targets."""
    visible = (1 - mask.to(target.dtype)).unsqueeze(-1)  # (N, L, 1)
    flat = (target * visible).sum(1, keepdim=True) / visible.sum(1, keepdim=True).clamp(min=1)  # (N, 1, D)
    return flat.expand_as(target)


def versus_flat(mae: MaskedAutoencoder, x: torch.Tensor, mask_ratio: float, seed: int = 12345) -> dict[str, float]:
    """Whether an MAE learned: its loss on hidden tokens against the flat predictor's under the same mask.

    The flat predictor fills every hidden token with the mean of its sample's visible targets (the same
    target the MAE is trained on, normalised per token where ``norm_target``): the best guess that knows
    nothing of where a token sits. A ratio well under 1 means the MAE predicts more than a flat fill;
    :data:`LEARNED` is the study's criterion.

    Args:
        x: (N, ...) held-out samples in the tokenizer's input layout.
        mask_ratio: the share of tokens hidden; the mask is drawn from ``seed``, the same for both.

    Returns:
        {"loss", "flat", "ratio" (loss / flat)}.
    """
    was = mae.training
    mae.eval()
    tokens = mae.tokenizer.tokenize(x)  # (N, L, D)
    g = torch.Generator(device=tokens.device).manual_seed(seed)
    masking = random_masking(tokens.shape[0], tokens.shape[1], mask_ratio, tokens.device, g)
    loss = mae.loss(tokens, mae.forward_decoder(mae.forward_encoder(tokens, masking), masking), masking.mask)
    target = mae.target(tokens).float()
    flat_loss = mae.loss(tokens, flat_fill(target, masking.mask), masking.mask)
    mae.train(was)
    return {"loss": float(loss), "flat": float(flat_loss), "ratio": float(loss / flat_loss)}
