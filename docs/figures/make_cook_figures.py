"""Draw the three overview figures of the step pages.

Run from the repository root: ``python docs/figures/make_cook_figures.py`` (needs matplotlib).

reconstruction.png, q-integration.png, e-spectrum-and-isf.png (docs/reconstruction.md,
q-integration.md, e-spectrum-and-isf.md): the small synthetic preset (182 x 96 px, 1024 frames),
seed 1, sample S001, at 100 dpi. The figures of docs/figures.md and docs/tutorial.md are not
files: the code shown on those pages draws them when the site is built.
"""
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from eqegs_repo import Repository, demo, synthetic  # noqa: E402

HERE = Path(__file__).resolve().parent
base = tempfile.mkdtemp()
tree = synthetic.write_tree(base, proposals=("2025A1234",), preset="small", seed=1, samples_per_proposal=1)
truth = synthetic.load_truth(base, tree.account, "2025A1234", "S001")
repo = Repository(tree.url(), spice_url="memory://", cache_url=False)
prop = repo["2025A1234"]
demo.seed_spice(prop, truth.params, n_mc=500)
sample = prop["S001"]
rec, qds, ds = (sample.cook(step) for step in ("reconstruction", "q_integration", "e_spectrum_and_isf"))

fig, axes = plt.subplots(1, 2, figsize=(9, 4))
axes[0].imshow(np.log10(rec.image.values + 1), cmap="magma")
x0, y0, x1, y1 = rec.attrs["roi"]
axes[0].add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, color="cyan"))
axes[0].set(title="log10 frame-summed image, auto ROI", xlabel="x (px)", ylabel="y (px)")
axes[1].plot(rec.frame, rec.counts_per_frame)
axes[1].set(title="counts per frame", xlabel="frame", ylabel="counts")
fig.tight_layout()
fig.savefig(HERE / "reconstruction.png", dpi=100)

fig, axes = plt.subplots(1, 3, figsize=(13, 4))
used = qds.npix > 0
axes[0].errorbar(qds.q[used], qds.profile[used], qds.profile_sigma[used], fmt=".")
axes[0].set(title="S(q): intensity per pixel after subtraction", xlabel="q (nm$^{-1}$)", ylabel="counts/px")
axes[1].imshow(qds.mask, cmap="gray")
axes[1].plot(qds.attrs["centre_x"], qds.attrs["centre_y"], "r+")
axes[1].set(title="mask (white: used), beam centre", xlabel="x (px)", ylabel="y (px)")
axes[2].plot(qds.frame, qds.forward_sample, label="sample")
axes[2].plot(qds.frame, qds.forward_background, label="background")
axes[2].set(title="forward spectra", xlabel="frame", ylabel="counts")
axes[2].legend()
fig.tight_layout()
fig.savefig(HERE / "q-integration.png", dpi=100)

from eqegs_repo.figures import with_error  # noqa: E402

fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
axes[0].plot(ds.energy, ds.forward_convex, label="forward (resolution)")
axes[0].plot(ds.energy, ds.qe_convex, label="quasi-elastic")
axes[0].set(title="convex spectra s = 1 - y/b", xlabel="E (neV)")
axes[0].legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, fontsize="small")
t = ds.t.values
keep = ds.accepted.values
shown = (t > 0) & (t <= 1.3 * t[keep].max())
axes[1].errorbar(t[keep], ds.isf[keep], ds.isf_sigma[keep], fmt="o", label="ISF (accepted)")
axes[1].plot(t[shown & ~keep], ds.isf[shown & ~keep], ".", color="0.7", label="ISF (not accepted)")
axes[1].plot(t[keep], ds.isf_fit[keep], "-", label=(f"fit: f_q = {with_error(ds.f_q.item(), ds.f_q_error.item())}\n"
                                                     f"tau = {with_error(ds.tau.item(), ds.tau_error.item(), 'ns')}"))
tt = np.linspace(0.1, t[keep].max(), 200)
axes[1].plot(tt, truth.isf_in_q_range(ds.attrs["q_min"], ds.attrs["q_max"], tt), "k--", label="truth")
drawn = np.concatenate([(ds.isf - ds.isf_sigma).values[keep], (ds.isf + ds.isf_sigma).values[keep],
                        ds.isf.values[shown]])
span = drawn.max() - drawn.min()
axes[1].set(title=f"ISF, q = {ds.attrs['q_min']}..{ds.attrs['q_max']} nm$^{{-1}}$", xlabel="t (ns)",
            ylim=(drawn.min() - 0.05 * span, drawn.max() + 0.05 * span), xlim=(0, 1.04 * t[shown].max()))
axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, fontsize="small")
fig.savefig(HERE / "e-spectrum-and-isf.png", dpi=100)
print("tau", ds.tau.item(), ds.tau_error.item(), "f_q", ds.f_q.item(), ds.f_q_error.item())

