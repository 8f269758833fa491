"""Configuration of tree synthesis (TrIND, Sinha et al., MICCAI 2024).

Stage 1 (per-tree occupancy INR): :class:`TreeFitConfig` and ``FIT_PRESETS``.
Stage 2 (weight-space diffusion): :class:`DiffusionConfig` and ``DIFFUSION_PRESETS``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from AnatomyINRLib.core.config import ConfigBase, check_choice, check_int, check_positive
from AnatomyINRLib.core.errors import InputError
from AnatomyINRLib.fitting.config import OptimConfig
from AnatomyINRLib.nn.occupancy import OccupancyNetworkConfig

# ----------------------------------------------------------------------------- stage 1: per-tree INR fitting


@dataclass
class TreeSamplingConfig(ConfigBase):
    """Training points of one tree (TrIND's sampling, normalised units: the tree spans ±``extent``).

    One *draw* follows the paper's code: 4N surface points jittered by a
    Gaussian of σ chosen from ``sigmas``, plus 4N/``near_to_uniform`` uniform
    points in [−1, 1]³ (16 : 1), labelled inside/outside with the mesh, then
    balanced to at most N/2 inside points, filled up with outside points to N.
    """

    points_per_draw: int = 10_000
    """N (paper: 10k)."""
    sigmas: tuple = (0.01, 0.02, 0.03)
    """Jitter standard deviations of the near-surface points (paper: 0.01, 0.02, 0.03)."""
    near_to_uniform: float = 16.0
    """Near-surface : uniform candidates (paper: 16)."""
    pool_draws: int = 1
    """Draws concatenated into the pool that minibatches are taken from."""
    resample_every: int = 500
    """Replace the pool by fresh draws every this many iterations (0 = never; paper: 500)."""
    batch_size: int = 0
    """Points per iteration, drawn at random from the pool (0 = the whole pool, the paper's full batch)."""
    extent: float = 0.9
    """The tree's bounding box is mapped into [−extent, extent]³ (aspect kept), a margin inside the uniform box."""
    eval_points: int = 40_000
    """Held-out uniform points in [−1, 1]³ for the reported volumetric IoU."""

    def validate(self) -> None:
        """Check ranges."""
        check_int("sampling.points_per_draw", self.points_per_draw, minimum=16)
        check_int("sampling.pool_draws", self.pool_draws)
        check_int("sampling.resample_every", self.resample_every, minimum=0)
        check_int("sampling.batch_size", self.batch_size, minimum=0)
        check_int("sampling.eval_points", self.eval_points, minimum=0)
        check_positive("sampling.near_to_uniform", self.near_to_uniform)
        if not self.sigmas or any(not (isinstance(s, (int, float)) and s > 0) for s in self.sigmas):
            raise InputError(f"sampling.sigmas: expected positive jitter widths, got {self.sigmas!r}")
        if not 0 < self.extent <= 1:
            raise InputError(f"sampling.extent: expected a value in (0, 1], got {self.extent!r}")


@dataclass
class JointFitConfig(ConfigBase):
    """The joint fit of ``TreeFitConfig.share`` "biases": one set of weight matrices, per-tree biases.

    Auto-decoding (DeepSDF's per-shape codes, functa's per-shape shift modulations): Adam on the shared
    matrices (and base biases) and on every tree's bias offsets together, each step on
    ``trees_per_step`` trees × ``points_per_tree`` points of their labelled pools, BCE on the logits
    plus ``bias_decay`` · ‖offset‖² per tree (a Gaussian prior on the codes, as DeepSDF's).
    """

    steps_per_tree: int = 2400
    """Budget: ceil(steps_per_tree × trees / trees_per_step) steps, so every tree takes part in about
    this many steps whatever the folder's size (100 trees, 20 per step: 12 000 steps)."""
    trees_per_step: int = 20
    points_per_tree: int = 1024
    lr: float = 1e-3
    """Adam learning rate of the shared matrices and base biases (cosine decay to lr · lr_final_factor)."""
    bias_lr: float = 3e-3
    """Adam learning rate of the trees' bias offsets."""
    lr_final_factor: float = 0.05
    bias_decay: float = 1e-4
    code_noise: float = 0.0
    """Standard deviation of Gaussian noise added to every offset in each training step (0 = none). The
    decoder then has to give a tree's shape for every offset near its own (a VAE's sampled posterior with
    a fixed variance), so networks near the training ones, where stage 2's samples land, decode to whole
    trees instead of fragments. In bias units: on 100 generator trees (1200 steps per tree) the offsets
    spread about 0.1 per dimension; 0.05 gave samples that hold together, 0.1 stopped the fit from fitting
    the trees (held-out IoU 0.06; docs/tree-synthesis-stage2-record.md, "Noise on the codes")."""
    check_every: int = 100
    """Steps between progress reports (each a window mean of the loss)."""

    def validate(self) -> None:
        """Check ranges."""
        for name in ("steps_per_tree", "trees_per_step", "points_per_tree", "check_every"):
            check_int(f"joint.{name}", getattr(self, name))
        for name in ("lr", "bias_lr", "lr_final_factor"):
            check_positive(f"joint.{name}", getattr(self, name))
        check_positive("joint.bias_decay", self.bias_decay, allow_zero=True)
        check_positive("joint.code_noise", self.code_noise, allow_zero=True)


@dataclass
class TreeFitConfig(ConfigBase):
    """Stage 1: one occupancy INR per tree mesh.

    Attributes:
        network: Residual occupancy MLP (paper: width 128, 5 blocks).
        sampling: Training points.
        optim: Adam, schedule and the shared plateau stopping rule
            (``fitting.monitor.ConvergenceMonitor``; ``rel_tol = 0`` runs the full budget).
        loss: "mse" on sigmoid occupancy (paper eq. 1) or "bce" on the logits.
        warm_start: Start every tree after the first from the first tree's fitted weights
            (a shared template: fewer steps, and the INRs of a data set share one basin).
        warm_iterations_factor: With a warm start, trees after the first get this share of the budget.
        stack: Trees fitted together in one vmapped step (``torch.func``); 1 = one at a time.
            Stacking pays on GPUs only (on CPU one shape-step costs the same however grouped).
        frame: "tree": each tree's own bounding box is mapped into [−extent, extent]³ (TrIND);
            "set": one frame for all the trees of a call, the union of their boxes. A set's
            networks then share one frame, so a network sampled by stage 2 maps back to mm as
            its training networks did (with "tree", a tree half the set's size came out of
            sampling twice as large and thick).
        share: "none": every tree its own network (TrIND). "biases": the trees of a call share one set
            of weight matrices and each keeps only its own biases (705 of 21 k values at width 64),
            fitted jointly (``joint``) after the first tree's fit gave the starting point. Every file
            is still a whole network (``anatomy-inr extract`` meshes it); stage 2 then diffuses the
            biases only (``trees._diffusion_tokens``). Needs frame "set" and one process.
        joint: The joint fit's settings (share "biases").
    """

    network: OccupancyNetworkConfig = field(default_factory=OccupancyNetworkConfig)
    sampling: TreeSamplingConfig = field(default_factory=TreeSamplingConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        iterations=6000, lr=1e-3, schedule="constant", min_iterations=0, check_every=100, rel_tol=0.0))
    loss: str = "mse"
    warm_start: bool = False
    warm_iterations_factor: float = 0.5
    stack: int = 1
    frame: str = "tree"
    share: str = "none"
    joint: JointFitConfig = field(default_factory=JointFitConfig)

    def validate(self) -> None:
        """Check every part."""
        self.network.validate()
        self.sampling.validate()
        self.optim.validate()
        self.joint.validate()
        check_choice("loss", self.loss, ("mse", "bce"))
        check_choice("frame", self.frame, ("tree", "set"))
        check_choice("share", self.share, ("none", "biases"))
        if self.share == "biases" and (self.frame != "set" or self.stack != 1 or self.loss != "bce"):
            raise InputError(f"share 'biases': needs frame 'set', stack 1 and loss 'bce' (one frame and one "
                             f"joint BCE fit for all trees), got frame {self.frame!r}, stack {self.stack}, "
                             f"loss {self.loss!r}")
        check_positive("warm_iterations_factor", self.warm_iterations_factor)
        check_int("stack", self.stack, maximum=4096)


def _paper() -> TreeFitConfig:
    """The paper's protocol: 10k points per step, 6000 full-batch steps, a new draw every 500, Adam 1e-3."""
    return TreeFitConfig()


def _fast() -> TreeFitConfig:
    """CPU protocol: width 64, a fixed labelled pool, 768-point minibatches, cosine lr, plateau stop, warm start.

    Width 64 costs about a fifth of width 128 per step; on one 6-bifurcation tree
    (2000 steps of 2048 points) it reached held-out IoU 0.968 against 0.96 for width 128 at 1500 steps.
    Minibatches of 768 instead of 2048 points (6 generated trees, one cold and five warm starts, 2 cores
    shared by two such runs): 12.1 instead of 24.9 CPU-s per warm tree, volume IoU median 0.921 vs 0.929,
    ASD median 0.085 vs 0.092 mm, worst CD 1.3e-4 vs 1.6e-4 (TrIND Table 1: 8e-3). Cutting steps instead
    cost more (900 warm steps of 1024: IoU 0.907, worst CD 3.8e-4; two pool draws: worst CD 7.5e-4).
    BCE instead of the paper's MSE on sigmoid: equal IoU on that tree (0.965), and it cannot stall
    once every logit saturates (MSE's gradient vanishes there; a warm-started MSE fit of a
    benchmark tree collapsed to an empty field).
    """
    return TreeFitConfig(
        network=OccupancyNetworkConfig(width=64, blocks=5),
        sampling=TreeSamplingConfig(points_per_draw=10_000, pool_draws=3, resample_every=0, batch_size=768),
        optim=OptimConfig(iterations=2000, lr=3e-3, schedule="cosine", lr_final_factor=0.05, min_iterations=600,
                          check_every=100, rel_tol=0.02, patience=3),
        loss="bce", warm_start=True, warm_iterations_factor=0.6, frame="set")


def _tiny() -> TreeFitConfig:
    """Tests and previews: a narrow net, small pool, short budget."""
    return TreeFitConfig(
        network=OccupancyNetworkConfig(width=64, blocks=3),
        sampling=TreeSamplingConfig(points_per_draw=4000, pool_draws=2, resample_every=0, batch_size=2048,
                                    eval_points=20_000),
        optim=OptimConfig(iterations=600, lr=3e-3, schedule="cosine", lr_final_factor=0.05, min_iterations=300,
                          check_every=100, rel_tol=0.02, patience=3))


def _shared() -> TreeFitConfig:
    """The ``fast`` protocol for the first tree, then one joint fit of shared matrices and per-tree biases.

    For stage 2: a diffusion model learns 705 biases per tree instead of 21 k weights. On the 100
    benchmark trees (2400 steps per tree, 20 trees × 1024 points per step) see the tree-synthesis page.
    """
    cfg = _fast()
    cfg.share = "biases"
    return cfg


FIT_PRESETS = {"paper": _paper, "fast": _fast, "shared": _shared, "tiny": _tiny}


def fit_preset(name: str) -> TreeFitConfig:
    """A fresh copy of the named stage-1 preset ("paper", "fast", "shared", "tiny")."""
    if name not in FIT_PRESETS:
        raise InputError(f"preset: expected one of {sorted(FIT_PRESETS)}, got {name!r}")
    return copy.deepcopy(FIT_PRESETS[name]())

# ----------------------------------------------------------------------------- end of stage 1


# ============================================================================ stage 2: weight-space diffusion


@dataclass
class DiffusionConfig(ConfigBase):
    """Weight-space diffusion (TrIND §2 Stage 2 and §3 Implementation details).

    Paper values are noted per field; the public code's differences are in the docs of the fields.
    """

    token_size: int = 512
    """Values per token; each INR layer (state-dict tensor) is cut into ceil(size/token_size) tokens."""
    width: int = 128
    """Transformer width (paper: 128-D hidden size)."""
    projection: str = "shared"
    """How tokens enter and leave the transformer: "token", a linear S → ``width`` and ``width`` → S
    of each token's own (the public code: one pair per weight tensor), or "shared", one pair for all
    tokens (whose output then lies in one ``width``-dimensional subspace for every token)."""
    head: str = "tokens"
    """What the transformer's output becomes: "tokens", a prediction per token (``projection``), or
    "hull", weights of a convex combination of the N training networks (softmax of a linear map of
    the mean token): x̂_0 = Σ_i w_i x_i, w_i ≥ 0, Σ w_i = 1. The x̂_0 that minimises the training loss
    (eq. 2) over the training set is the posterior mean E[x_0 | x_t], which is such a combination, so
    the "hull" head has the ideal denoiser's form; it needs "x0" prediction without ``x0_skip``, and
    its checkpoint holds the training tokens (N × P values)."""
    temperature: float = 1.0
    """"hull" head only, at sampling: the mixture weights become softmax(logits / temperature). At 1 a
    trained model picks one training network at the end of the trajectory (a copy); above 1 each sample
    blends several (their number is reported by ``trees sample``)."""
    depth: int = 4
    """Transformer blocks (paper: 4 layers)."""
    heads: int = 4
    """Attention heads (paper: 4)."""
    dropout: float = 0.0
    """Dropout in attention and MLP (public code: 0). Must be 0: attention dropout would draw from
    torch's global RNG, and every random draw of a run comes from its seed."""
    diffusion_steps: int = 1000
    """T (paper: 1k time steps; public code default 500)."""
    beta_start: float = 1e-4
    """β_0 of the linear schedule (paper and code: 1e-4)."""
    beta_end: float = 2e-2
    """β_{T-1}: the public code's 2e-2 (the paper prints 1e-2, which leaves 8 % of the signal at t = T)."""
    prediction: str = "x0"
    """What the denoiser predicts: "x0" (paper eq. 2, public code) or "eps"."""
    normalisation: str = "layer"
    """"layer": each layer's values minus the layer's mean over the training set, over a power-of-two
    spread (paper); "parameter": each weight minus its own training-set mean (the mean network), over
    the layer's spread of those deviations (``trees._diffusion_tokens``): the denoiser then models only
    how the trees differ, which matters when they share one basin."""
    x0_skip: bool = True
    """x̂_0 = √ᾱ·x_t + √(1−ᾱ)·F (not in the paper; the loss is still eq. 2). Without it a small
    denoiser collapses each mode of the weight distribution to a point (measured on a 2-mode toy set).
    Its cost: the d → S head (d = ``width`` < S = ``token_size``) cannot cancel the noise in the other
    S − d directions of a token, which the skip carries unchanged to the sample (96 % of it, a test in
    ``Testing/trees``). Turned off on the 100 generator trees (600 epochs) samples grew from 63 to 88 mm
    (training trees 122 mm) and 3.4 to 5.0 bifurcations but got fatter (radius 1.64 vs 1.38, training
    1.07) and less diverse (COV 0.33 vs 0.44), so the default stays."""
    epochs: int = 200
    """Passes over the data set (paper: 6000 on an A40 GPU, about 3 days)."""
    batch_size: int = 8
    """Networks per optimiser step, summed over all processes (paper: 8)."""
    learning_rate: float = 1e-3
    """AdamW learning rate (paper: 1e-3)."""
    weight_decay: float = 0.01
    """AdamW weight decay (the public code's flag is unused, so AdamW's default 0.01 applies)."""
    lr_decay: float = 0.9
    """Step decay factor of the learning rate (paper: 0.9)."""
    lr_decay_every: int = 200
    """Epochs between decays (paper: 200; public code: 100)."""
    grad_clip: float = 2.0
    """Gradient-norm clip (public code: 2.0); 0 disables it."""
    ema_decay: float = 0.999
    """Exponential moving average of the denoiser's weights (sampling uses the EMA weights)."""
    checkpoint_every: int = 1
    """Epochs between checkpoints (the last epoch is always written)."""
    sample_steps: int = 50
    """DDIM steps at sampling time (public code: all T)."""
    eta: float = 0.0
    """DDIM η (0 = deterministic given the initial noise; 1 ≈ DDPM)."""

    def validate(self) -> None:
        """Check every field; raise InputError naming the bad one."""
        for name in ("token_size", "width", "depth", "heads", "diffusion_steps", "epochs", "batch_size",
                     "lr_decay_every", "checkpoint_every", "sample_steps"):
            check_int(name, getattr(self, name))
        if self.width % self.heads:
            raise InputError(f"heads: must divide width ({self.width}), got {self.heads}")
        check_choice("prediction", self.prediction, ("x0", "eps"))
        check_choice("normalisation", self.normalisation, ("layer", "parameter"))
        check_choice("projection", self.projection, ("shared", "token"))
        check_choice("head", self.head, ("tokens", "hull"))
        check_positive("temperature", self.temperature)
        if self.head != "hull" and self.temperature != 1.0:
            raise InputError(f"temperature: applies to the 'hull' head only, got {self.temperature!r} "
                             f"with head {self.head!r}")
        if self.head == "hull" and (self.prediction != "x0" or self.x0_skip):
            raise InputError(f"head 'hull': needs prediction 'x0' and x0_skip off (the head gives x̂_0 itself), "
                             f"got prediction {self.prediction!r}, x0_skip {self.x0_skip!r}")
        for name in ("learning_rate", "lr_decay"):
            check_positive(name, getattr(self, name))
        for name in ("weight_decay", "grad_clip", "dropout"):
            check_positive(name, getattr(self, name), allow_zero=True)
        if not 0 < self.beta_start <= self.beta_end < 1:
            raise InputError(f"beta_start, beta_end: expected 0 < beta_start <= beta_end < 1, "
                             f"got {self.beta_start}, {self.beta_end}")
        if not 0 <= self.ema_decay < 1:
            raise InputError(f"ema_decay: expected a number in [0, 1), got {self.ema_decay!r}")
        if not 0 <= self.eta <= 1:
            raise InputError(f"eta: expected a number in [0, 1], got {self.eta!r}")
        if self.sample_steps > self.diffusion_steps:
            raise InputError(f"sample_steps: at most diffusion_steps ({self.diffusion_steps}), got {self.sample_steps}")
        if self.dropout != 0:  # torch's attention dropout draws from the global RNG, which the library never seeds
            raise InputError(f"dropout: expected 0 (attention dropout cannot be drawn from the run's seeded "
                             f"generator), got {self.dropout!r}")


#: Presets as data: name → field overrides of :class:`DiffusionConfig`.
DIFFUSION_PRESETS = {
    "tiny": {"token_size": 64, "width": 32, "depth": 2, "heads": 2, "epochs": 2, "sample_steps": 10},
    # per-parameter normalisation: 100 one-basin stage-1 trees (each in its own frame), 600 epochs:
    # 1-NNA 76.2 %, COV 0.44, no empty sample; per-layer (the paper's) after 1200 epochs: 1-NNA 96.8 %,
    # COV 0.23, 8 of 53 empty. On the same trees fitted in one frame: 1-NNA 79.0 %, COV 0.27, stumps
    "cpu": {"normalisation": "parameter"},
    # x̂_0 a convex combination of the training networks, sampled at temperature 2 (trees fitted in one
    # frame): samples blend about two training trees (1-NNA 76.2 %, COV 0.33), 74 % are still near-copies
    # and they come out thicker (radius 1.64 vs 1.07 mm); at 1.25 every sample is a near-copy of a
    # training tree
    "hull": {"normalisation": "parameter", "head": "hull", "x0_skip": False, "temperature": 2.0},
    # for networks of 'trees fit --preset shared' (only the biases differ; 12 tokens): without the x̂_0
    # skip, which left these samples short. 100 epochs is for about 500 trees (6300 steps of batch 8);
    # choose --epochs for other folder sizes. On 500 trees: new trees (memorisation
    # ratio 0.98) with the training trees' mean branching, 10 % thicker, at 59 % of their length
    # (benchmarks/results/trees_diffusion_shared500.md); on 100 trees the samples turn into copies
    # as they lengthen (400 → 1000 epochs)
    "shared": {"normalisation": "parameter", "x0_skip": False, "epochs": 100},
    "paper": {"epochs": 6000, "sample_steps": 1000},
    # the centreline model (trees._centerline_tokens): one 30-value token per branch (8 points per
    # branch), batches of 64 trees. 50 epochs of 10 000 trees = 7850 steps, 13.9 min on 2 CPU cores
    # (benchmarks/results/trees_centerline.md); choose --epochs for other folder sizes
    "centerline": {"token_size": 30, "batch_size": 64, "learning_rate": 3e-4, "weight_decay": 0.0,
                   "x0_skip": False, "epochs": 50, "checkpoint_every": 10},
}


def diffusion_preset(name: str = "cpu") -> DiffusionConfig:
    """A fresh :class:`DiffusionConfig` for preset ``name`` ("tiny" for tests, "cpu", "hull", "shared", "paper",
    "centerline" for the centreline model)."""
    check_choice("preset", name, tuple(DIFFUSION_PRESETS))
    return DiffusionConfig(**DIFFUSION_PRESETS[name])
