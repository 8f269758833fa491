"""Stage 1 on one process's share of the trees: check, then label and fit one tree at a time (warm-started
from one template), collect rows.

``api.fit_trees`` calls :func:`fit_shard` once in a single process, or once per ``torchrun`` rank on
that rank's indices (``trees._shard``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from AnatomyINRLib import __version__
from AnatomyINRLib.core.errors import FitError, InputError
from AnatomyINRLib.core.progress import ProgressReporter
from AnatomyINRLib.core.types import TriangleMesh
from AnatomyINRLib.nn.occupancy import FIELD_KIND
from AnatomyINRLib.trees.config import TreeFitConfig


def set_frame(meshes, names, cfg: TreeFitConfig, reporter: ProgressReporter, keep=None):
    """(frame, cleaned) of a ``frame`` "set" fit; (None, None) for "tree" (each tree its own box).

    frame: the one Normalization of every network, the union of the boxes of the meshes that can be
    fitted (cleaned as :func:`closed_mesh` cleans them, closed), mapped into [−extent, extent]³: a mesh
    that ``skip_bad`` will drop does not widen it (None if no mesh can be fitted). Computed from every
    mesh of the call, so all torchrun ranks get the same frame.
    cleaned: per mesh, its cleaned closed mesh (only for the indices in ``keep``, default all; None
    for the others, so a rank holds only its share), or the InputError it cannot be fitted with, so
    that the samplers do not clean it again (~75 ms a tree). Reports a "frame" progress event per
    mesh (cancellable).
    """
    from AnatomyINRLib.nn.field import Normalization
    from AnatomyINRLib.trees._sampling import closed_mesh

    if cfg.frame != "set":
        return None, None
    corners, cleaned = [], []
    for i, (mesh, name) in enumerate(zip(meshes, names)):
        try:
            closed = closed_mesh(mesh, name)
            corners += [closed.vertices.min(axis=0), closed.vertices.max(axis=0)]
            cleaned.append(closed if keep is None or i in keep else None)
        except InputError as exc:
            cleaned.append(exc)  # not fittable: _checked refuses or skips it with this reason
        reporter.report("frame", (i + 1) / len(meshes), f"{name}: checked for the set's frame")
    frame = Normalization.fit(np.array(corners), extent=cfg.sampling.extent) if corners else None
    return frame, cleaned


def _checked(meshes, names, skip_bad: bool, reporter: ProgressReporter, cleaned=None):
    """(closed meshes, indices of the usable meshes, {name: reason} of the others); may leave none.

    ``cleaned``: :func:`set_frame`'s cleaned meshes or errors for these meshes, None to clean here.
    The samplers (~12 MB each) are built later, one tree or stack at a time (:func:`_run`), so that
    labelled points do not pile up over a rank's share of the folder.
    """
    from AnatomyINRLib.trees._sampling import closed_mesh

    closed_meshes, kept, skipped = [], [], {}
    for i, (mesh, name) in enumerate(zip(meshes, names)):
        try:
            closed = closed_mesh(mesh, name) if cleaned is None else cleaned[i]
            if isinstance(closed, InputError):
                raise closed
            closed_meshes.append(closed)
            kept.append(i)
        except InputError as exc:
            if not skip_bad:
                raise
            skipped[name] = str(exc)
        reporter.report("prepare", (i + 1) / len(meshes), f"{name}: checked")
    return closed_meshes, kept, skipped


def fit_shard(all_meshes, all_names, indices, cfg: TreeFitConfig, seed: int, skip_bad: bool, dev,
              reporter: ProgressReporter, share=None) -> dict:
    """Fit the meshes at ``indices`` of the whole call's ``all_meshes`` (seeds seed + index); rows
    ready to merge across ranks.

    With ``frame`` "set" the frame comes from all the call's meshes (:func:`set_frame`; a shard's own
    would give another), computed here so that a failure or a cancel in it still reaches the ranks'
    exchange (``_shard.run_sharded``) and the template broadcast.

    ``share`` (torchrun with a warm start): rank 0 sends its first fit as every rank's template once
    it is fitted; the other ranks check their meshes and label their first tree (or stack), then wait
    for it (``_shard.TemplateShare``).
    """
    start = time.perf_counter()
    on_template = share.send if share is not None and share.rank == 0 else None
    names = [all_names[i] for i in indices]
    try:
        frame, cleaned = set_frame(all_meshes, all_names, cfg, reporter, keep=set(indices))
        closed, kept, skipped = _checked([all_meshes[i] for i in indices], names, skip_bad, reporter,
                                         None if cleaned is None else [cleaned[i] for i in indices])
        receive = share.receive if share is not None and share.rank > 0 else None
        seeds = [seed + indices[k] for k in kept]
        jobs = [_Job(c, names[k], s) for c, k, s in zip(closed, kept, seeds)]
        del cleaned, closed  # each job's mesh is released once its sampler is built
        if jobs and cfg.share == "biases":  # one process (api.fit_trees refuses torchrun)
            fits, ready = _run_shared(jobs, cfg, frame, dev, reporter)
        elif jobs:
            fits, ready = _run(jobs, cfg, frame, dev, reporter, receive, on_template)
        else:
            fits, ready = [], time.perf_counter()
            if receive is not None:
                receive()  # nothing to fit here, but every rank joins the one broadcast
    except BaseException as exc:
        # every rank joins the one broadcast, even after its own failure, or the others would wait forever
        if share is not None and share.rank == 0:
            share.fail(exc)
        elif share is not None and not share.done:
            _receive_quietly(share)
        raise
    if on_template is not None:
        on_template(None)  # rank 0 had nothing to fit: the others start cold (no-op once sent)
    rows = [{"index": indices[k], "name": names[k], "field": f.field, "metadata": _metadata(f, bounds, cfg, sd),
             "row": _tree_row(names[k], f)} for k, (f, bounds), sd in zip(kept, fits, seeds)]
    return {"trees": rows, "skipped": skipped, "prepare_seconds": ready - start, "seconds": time.perf_counter() - start}


def _receive_quietly(share) -> None:
    """Join rank 0's broadcast after this rank already failed (its own error is the one raised)."""
    try:
        share.receive()
    except Exception:
        pass


@dataclass
class _Job:
    """One tree to fit: its cleaned closed mesh (RAS mm), name and seed."""

    mesh: TriangleMesh
    name: str
    seed: int


def _sampler(job: _Job, cfg: TreeFitConfig, frame):
    """The job's TreeSampler in ``frame``; the job's mesh is released (the sampler holds what is needed)."""
    from AnatomyINRLib.trees._sampling import TreeSampler

    built = TreeSampler(job.mesh, cfg.sampling, name=job.name, normalization=frame)
    job.mesh = None
    return built


def _run(jobs: list, cfg: TreeFitConfig, frame, dev, reporter: ProgressReporter, receive=None,
         on_template=None) -> tuple:
    """Fit every job, in stacks if ``cfg.stack`` > 1: ([(fit, box in mm)] in order, the time the
    first sampler (or stack of samplers) was built).

    Each tree's sampler is built just before its fit and dropped after it (one stack at a time).
    Without ``receive`` the first tree is fitted cold and (with ``cfg.warm_start``) becomes the
    template of the rest, passed to ``on_template``; with it (torchrun rank > 0) the first stack is
    labelled while rank 0 fits its first tree, then the template is received and every tree starts
    from it; if rank 0 had nothing to fit (None), this rank's first tree is its template.
    """
    from AnatomyINRLib.trees._stacked import fit_stacked

    def samplers(group):
        built = []
        for job in group:
            built.append(_sampler(job, cfg, frame))
            reporter.report("fit", 0.0, f"{job.name}: points labelled")  # also polls the cancel check
        return built

    template = None
    ready = samplers(jobs[:1] if receive is None else jobs[:cfg.stack])
    started = time.perf_counter()
    if receive is not None:
        template = receive()  # None: rank 0 had nothing to fit, so this rank starts its own template
    out, i = [], 0
    if template is None:  # the first tree cold, as one process fits its first kept tree
        fit = _fit_checked(ready[0], cfg, jobs[0].seed, dev, None, reporter, jobs[0].name)
        out, i, ready = [(fit, ready[0].bounds_mm)], 1, None
        if cfg.warm_start:
            template = {k: v.detach().clone() for k, v in fit.field.network.state_dict().items()}
            if on_template is not None:
                on_template(template)
    while i < len(jobs):
        group = jobs[i:i + cfg.stack]
        ready = ready or samplers(group)
        if len(group) == 1:
            fits = [_fit_checked(ready[0], cfg, group[0].seed, dev, template, reporter, group[0].name)]
        else:
            fits = fit_stacked(ready, cfg, seeds=[j.seed for j in group], device=dev, init_state=template,
                               progress=reporter, labels=[j.name for j in group])
        out += [(f, s.bounds_mm) for f, s in zip(fits, ready)]
        i, ready = i + len(group), None
    return out, started


def _run_shared(jobs: list, cfg: TreeFitConfig, frame, dev, reporter: ProgressReporter) -> tuple:
    """share "biases": the first tree fitted alone (the start of the shared network), then every tree's
    labelled points (one sampler at a time), then the joint fit (``trees._joint``); as :func:`_run`.
    A single tree keeps its own fit."""
    from AnatomyINRLib.trees._joint import fit_jointly, label_tree

    first = _sampler(jobs[0], cfg, frame)
    started = time.perf_counter()
    solo = _fit_checked(first, cfg, jobs[0].seed, dev, None, reporter, jobs[0].name)
    if len(jobs) == 1:  # nothing to share: the tree's own fit is its network
        return [(solo, first.bounds_mm)], started
    template = solo.field.network.state_dict()
    trees = [label_tree(first, jobs[0].seed, dev)]
    del first
    reporter.report("label", 1 / len(jobs), f"{jobs[0].name}: points labelled")
    for i, job in enumerate(jobs[1:], start=2):
        trees.append(label_tree(_sampler(job, cfg, frame), job.seed, dev))  # the sampler (~12 MB) goes, the pool stays
        reporter.report("label", i / len(jobs), f"{job.name}: points labelled")
    fits = fit_jointly(trees, [j.name for j in jobs], template, cfg, jobs[0].seed, dev, reporter, frame)
    return [(f, t.bounds_mm) for f, t in zip(fits, trees)], started


def _fit_checked(sampler, cfg: TreeFitConfig, seed: int, dev, template, reporter: ProgressReporter, name: str):
    """One tree; a warm start that collapsed to the empty field is refitted once from a cold start."""
    from AnatomyINRLib.trees._fit import fit_one

    fit = fit_one(sampler, cfg, seed=seed, device=dev, init_state=template, progress=reporter, label=name)
    if fit.collapsed and template is not None:
        reporter.report("fit", 0.0, f"{name}: the warm start collapsed to an empty field; refitting from scratch")
        fit = fit_one(sampler, cfg, seed=seed, device=dev, init_state=None, progress=reporter, label=name)
    if fit.collapsed:
        raise FitError(f"{name}: the fit collapsed to an empty field (every logit saturated outside); "
                       "try loss 'bce', a lower learning rate or another seed")
    return fit


def _metadata(fit, bounds_mm, cfg: TreeFitConfig, seed: int) -> dict:
    return {"field_kind": FIELD_KIND, "points_bounds_mm": bounds_mm.tolist(),
            "fit": {"command": "trees fit", "seed": seed, "iterations": fit.iterations, "converged": fit.converged,
                    "seconds": round(fit.seconds, 3), "final_loss": fit.final_loss, "heldout_iou": fit.iou,
                    "library_version": __version__, "config": cfg.to_dict()}}


def _tree_row(name: str, fit) -> dict:
    return {"name": name, "iterations": fit.iterations, "converged": fit.converged, "seconds": round(fit.seconds, 3),
            "cpu_seconds": None if fit.cpu_seconds is None else round(fit.cpu_seconds, 3), "final_loss": fit.final_loss, "heldout_iou": fit.iou}
