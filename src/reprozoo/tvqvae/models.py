"""TVQ-VAE networks (text branch), after Yoo & Choi, "Topic-VQ-VAE: Leveraging Latent Codebooks for
Flexible Topic-Guided Document Generation" (AAAI 2024), and the released document-analysis code.

- :class:`VQAutoEncoder`: MLP autoencoder over token embeddings with a VQ codebook; each token maps
  to its ``n_neighbors`` nearest codes ("multi-hot"), the quantised vector is their **sum**
  (``quantize="mean"`` divides by n), straight-through gradients, loss
  ``MSE(recon) + MSE(z_q, sg z) + 0.25 MSE(sg z_q, z)``.
- :class:`TopicEncoder`: the ProdLDA-style inference network (two tanh layers, mean and
  log-variance heads with BatchNorm without affine parameters) and the learnable
  logistic-normal prior (the Laplace approximation of Dirichlet(1)).
- :class:`TVQDecoder`: topic-code matrix ``beta`` (K x N_rho), code decoder
  ``softmax(BN(theta beta))``, topic embeddings ``tau = l2norm(beta l2norm(E))`` and the word
  decoder ``A = BN_topics(alpha(tau))`` (K x V; a BatchNorm over the K topic rows, as the released
  code), ``p(w) = softmax(BN(theta A))``. alpha is the released tanh MLP (``alpha_hidden=1``, the
  default) or the paper-time linear map (``alpha_hidden=0``, not in the released code).
- :class:`BowDecoder`: the ProdLDA decoder ``softmax(BN(theta beta))`` over words (the baseline).
- :class:`TopicModel`: encoder + decoder, the ELBO with explicit weights ``w_code``, ``w_word``,
  ``w_kl`` (the released text code uses 0, 1, 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.runtime.registry import register_model


# ------------------------------------------------------------------ stage B: VQ autoencoder
def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VQAutoEncoder(nn.Module):
    """Token-embedding autoencoder with a multi-hot VQ bottleneck on the unit sphere."""

    def __init__(self, input_dim: int = 768, hidden_dims: tuple[int, ...] = (500, 500, 1000), code_dim: int = 100,
                 n_codes: int = 300, n_neighbors: int = 5, drop_rate: float = 0.0, quantize: str = "sum",
                 commitment: float = 0.25):
        super().__init__()
        if not 1 <= n_neighbors <= n_codes:
            raise ValueError(f"n_neighbors must be in 1..n_codes ({n_codes}), got {n_neighbors}")
        if quantize not in ("sum", "mean"):
            raise ValueError(f"quantize must be 'sum' or 'mean', got '{quantize}'")
        # the code dimension is passed explicitly (the released code sized it from a list it reversed in place)
        self.input_dim, self.code_dim, self.n_codes, self.n_neighbors = input_dim, code_dim, n_codes, n_neighbors
        self.quantize, self.commitment = quantize, commitment
        self.encoder = _mlp([input_dim, *hidden_dims, code_dim])
        self.dropout = nn.Dropout(drop_rate)  # on z, after the L2 normalisation
        self.codebook = nn.Parameter(torch.empty(n_codes, code_dim).uniform_(-1.0, 1.0))
        self.decoder = _mlp([code_dim, *reversed(hidden_dims), input_dim])
        # input standardisation (identity unless set_input_stats is called); part of the saved state
        self.register_buffer("in_mean", torch.zeros(input_dim))
        self.register_buffer("in_std", torch.ones(input_dim))

    @torch.no_grad()
    def set_input_stats(self, vectors: torch.Tensor) -> None:
        """Standardise inputs per dimension with these statistics (language-model states are
        anisotropic: without it most tokens start near the same few codes)."""
        self.in_mean.copy_(vectors.mean(0))
        self.in_std.copy_(vectors.std(0).clamp_min(1e-6))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.in_mean) / self.in_std

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(F.normalize(self.encoder(self.standardise(x)), dim=-1))

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Indices ``(T, n)`` of the ``n_neighbors`` nearest codes (squared L2) of each row of ``z``."""
        d = (z.pow(2).sum(-1, keepdim=True) - 2 * z @ self.codebook.t() + self.codebook.pow(2).sum(-1))
        return d.topk(self.n_neighbors, dim=-1, largest=False).indices

    def multi_hot(self, idx: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(idx.shape[0], self.n_codes, device=idx.device)
        return h.scatter_(1, idx, 1.0)

    def quantise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.multi_hot(self.codes(z))
        zq = h @ self.codebook
        if self.quantize == "mean":
            zq = zq / self.n_neighbors
        return zq, h

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        zq, h = self.quantise(z)
        z_st = z + (zq - z).detach()
        recon = self.decoder(z_st)
        rec = F.mse_loss(recon, self.standardise(x))
        vq = F.mse_loss(zq, z.detach()) + self.commitment * F.mse_loss(zq.detach(), z)
        probs = h.mean(0) / self.n_neighbors  # the released log does not divide by n (it can exceed N)
        usage = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())  # codebook usage ("perplexity" in the code)
        return {"loss": rec + vq, "recon": rec, "vq": vq, "usage": usage, "h": h, "x_bar": recon}


# ------------------------------------------------------------------ stage D: topic model
class TopicEncoder(nn.Module):
    """q(theta | x) = LogisticNormal(mu(x), diag exp(logvar(x))) and the learnable prior."""

    def __init__(self, n_input: int, n_topics: int, hidden: tuple[int, ...] = (100, 100), drop_rate: float = 0.0,
                 prior_mean: float | None = None):
        super().__init__()
        dims = [n_input, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.body = nn.Sequential(*layers, nn.Dropout(drop_rate))
        self.mu = nn.Sequential(nn.Linear(dims[-1], n_topics), nn.BatchNorm1d(n_topics, affine=False))
        self.logvar = nn.Sequential(nn.Linear(dims[-1], n_topics), nn.BatchNorm1d(n_topics, affine=False))
        m0 = 1.0 / n_topics if prior_mean is None else prior_mean
        # Laplace approximation of Dirichlet(1): mean m0, variance 1 - 1/K; both learned
        self.prior_mean = nn.Parameter(torch.full((n_topics,), float(m0)))
        self.prior_var = nn.Parameter(torch.full((n_topics,), 1.0 - 1.0 / n_topics))
        self.n_topics = n_topics

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q || prior) per document (diagonal logistic-normal in the softmax basis)."""
        var0 = self.prior_var.clamp_min(1e-6)
        var = logvar.exp()
        return 0.5 * ((var / var0).sum(-1) + ((self.prior_mean - mu).pow(2) / var0).sum(-1)
                      - self.n_topics + var0.log().sum() - logvar.sum(-1))


class BowDecoder(nn.Module):
    """ProdLDA's decoder: ``p(w | theta) = softmax(BN(theta beta))``, beta K x V."""

    def __init__(self, n_topics: int, n_words: int):
        super().__init__()
        self.beta = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_topics, n_words)))
        self.bn = nn.BatchNorm1d(n_words, affine=False)

    def forward(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"word_logits": self.bn(theta @ self.beta)}

    def topic_word(self) -> torch.Tensor:
        return self.beta.detach()

    def word_logits_eval(self, theta: torch.Tensor) -> torch.Tensor:
        return theta @ self.beta


class Alpha(nn.Module):
    """Word map alpha: topic embedding tau (D) -> word logits (V). ``hidden=1|2`` (the released
    code; 1 is its default): tanh MLP D-100-100(-100)-V. ``hidden=0``: one D x V matrix (the
    paper-time version; the released code has none and builds the ``hidden=1`` MLP for 0)."""

    def __init__(self, code_dim: int, n_words: int, hidden: int = 1, width: int = 100):
        super().__init__()
        if hidden == 0:
            lin = nn.Linear(code_dim, n_words, bias=False)
            nn.init.xavier_uniform_(lin.weight)
            self.net = lin
        else:
            dims = [code_dim] + [width] * (hidden + 1)
            layers: list[nn.Module] = []
            for a, b in zip(dims[:-1], dims[1:]):
                layers += [nn.Linear(a, b), nn.Tanh()]
            self.net = nn.Sequential(*layers, nn.Linear(width, n_words))

    def forward(self, tau: torch.Tensor) -> torch.Tensor:
        return self.net(tau)


def standardise_over_topics(a: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each word column of a K x V matrix to zero mean and unit variance over the K topics (what
    alpha's train-mode BatchNorm does; topics are read from this, not from running statistics)."""
    mean = a.mean(0, keepdim=True)
    var = a.var(0, unbiased=False, keepdim=True)
    return (a - mean) / torch.sqrt(var + eps)


class TVQDecoder(nn.Module):
    """Code decoder and word decoder of TVQ-VAE over a frozen codebook ``E`` (N_rho x D)."""

    def __init__(self, n_topics: int, codebook: torch.Tensor, n_words: int, alpha_hidden: int = 1,
                 alpha_bn: bool = True):
        super().__init__()
        n_codes, code_dim = codebook.shape
        self.register_buffer("codebook", codebook.detach().clone())
        self.beta = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_topics, n_codes)))
        self.code_bn = nn.BatchNorm1d(n_codes, affine=False)
        self.alpha = Alpha(code_dim, n_words, alpha_hidden)
        self.alpha_bn = alpha_bn
        # BN of alpha's output over the K topic rows: batch statistics in training (= standardise_over_topics),
        # running statistics in eval mode, as the released code
        self.topic_bn = nn.BatchNorm1d(n_words, affine=False) if alpha_bn else None
        self.word_bn = nn.BatchNorm1d(n_words, affine=False)

    def tau(self) -> torch.Tensor:
        """Topic embeddings (K x D): l2norm(beta @ l2norm_rows(E))."""
        return F.normalize(self.beta @ F.normalize(self.codebook, dim=-1), dim=-1)

    def topic_word(self) -> torch.Tensor:
        """The K x V topic-word scores topics are read from: alpha(tau) standardised over topics
        (the train-mode statistics the released code ranks, whatever the module's mode)."""
        a = self.alpha(self.tau())
        return standardise_over_topics(a) if self.alpha_bn else a

    def forward(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        a = self.alpha(self.tau())
        topic_word = self.topic_bn(a) if self.topic_bn is not None else a
        return {"code_logits": self.code_bn(theta @ self.beta), "topic_word": topic_word,
                "word_logits": self.word_bn(theta @ topic_word)}

    def word_logits_eval(self, theta: torch.Tensor) -> torch.Tensor:
        return theta @ self.topic_word()


def multinomial_nll(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``-sum_v x_v log p_v`` per document (the released code's reconstruction term)."""
    return -(counts * torch.log(torch.softmax(logits, -1) + 1e-10)).sum(-1)


class TopicModel(nn.Module):
    """Inference network + decoder with the ELBO (batch means; weights explicit)."""

    def __init__(self, encoder: TopicEncoder, decoder: nn.Module, w_code: float = 0.0, w_word: float = 1.0,
                 w_kl: float = 1.0, drop_rate: float = 0.0):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.w_code, self.w_word, self.w_kl = w_code, w_word, w_kl
        self.theta_dropout = nn.Dropout(drop_rate)  # on theta before decoding (the released code: 0)

    def forward_full(self, x: torch.Tensor, words: torch.Tensor,
                     eps: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(losses, tensors)``: the scalar losses and the intermediate tensors (mu, logvar,
        theta and the decoder's logits) of one forward pass with noise ``eps``."""
        mu, logvar = self.encoder(x)
        if eps is None:
            eps = torch.randn_like(mu)
        theta = self.theta_dropout(torch.softmax(mu + torch.exp(0.5 * logvar) * eps, -1))
        out = self.decoder(theta)
        rl_word = multinomial_nll(out["word_logits"], words).mean()
        kl = self.encoder.kl(mu, logvar).mean()
        loss = self.w_word * rl_word + self.w_kl * kl
        logs = {"rl_word": rl_word, "kl": kl}
        if "code_logits" in out:
            rl_code = multinomial_nll(out["code_logits"], x).mean()  # logged even when its weight is 0
            loss = loss + self.w_code * rl_code
            logs["rl_code"] = rl_code
        return {"loss": loss, **logs}, {"mu": mu, "logvar": logvar, "theta": theta, **out}

    def forward(self, x: torch.Tensor, words: torch.Tensor, eps: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.forward_full(x, words, eps)[0]

    @torch.no_grad()
    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic document-topic mixtures: softmax of the posterior mean."""
        mu, _ = self.encoder(x)
        return torch.softmax(mu, -1)


# ------------------------------------------------------------------ registered constructors
@register_model
def tvq_vq_autoencoder(input_dim: int = 768, n_codes: int = 300, code_dim: int = 100, n_neighbors: int = 5,
                       **kw) -> VQAutoEncoder:
    """The paper's stage-B autoencoder (768-500-500-1000-100, 300 codes, 5 neighbours)."""
    return VQAutoEncoder(input_dim, code_dim=code_dim, n_codes=n_codes, n_neighbors=n_neighbors, **kw)


@register_model
def tvq_topic_model(n_topics: int = 20, n_words: int = 2000, n_codes: int = 300, code_dim: int = 100,
                    alpha_hidden: int = 1, codebook: torch.Tensor | None = None, **kw) -> TopicModel:
    """TVQ-VAE's stage-D topic model over a codebook (random U(-1,1) codebook when none is given)."""
    if codebook is None:
        codebook = torch.empty(n_codes, code_dim).uniform_(-1, 1)
    return TopicModel(TopicEncoder(codebook.shape[0], n_topics),
                      TVQDecoder(n_topics, codebook, n_words, alpha_hidden), **kw)


@register_model
def prodlda(n_topics: int = 20, n_words: int = 2000, **kw) -> TopicModel:
    """ProdLDA over word counts with the same inference network (the codebook-free baseline)."""
    return TopicModel(TopicEncoder(n_words, n_topics), BowDecoder(n_topics, n_words), **kw)

