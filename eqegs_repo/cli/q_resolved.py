"""``eqegs q-resolved``: τ, f_q and the q of many q ranges of one sample from one q integration,
and the τ(q) law fitted across them (docs/e-spectrum-and-isf.md#q-resolved-dynamics)."""
import argparse
import warnings

from eqegs_repo.cli.common import add_repository_arguments, assignment, open_repository, override_values
from eqegs_repo.errors import BadInput, PhysicsWarning
from eqegs_repo.measured import with_error


def q_range_text(text):
    """argparse type of ``Q_MIN:Q_MAX`` (nm⁻¹): ``(q_min, q_max)`` floats."""
    low, sep, high = text.partition(":")
    try:
        return float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected Q_MIN:Q_MAX in nm^-1, e.g. 10:12, got {text!r}") from None


def beta_text(text):
    """argparse type of ``--beta``: ``"shared"`` or a number."""
    if text == "shared":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'shared' or a number, got {text!r}") from None


def cmd_q_resolved(args):
    from eqegs_repo.cooking.q_resolved import tau_q_law
    from eqegs_repo.params.effective import check_overrides

    if bool(args.range) == bool(args.split):
        raise BadInput("give the q ranges either as --range Q_MIN:Q_MAX (repeatable) or as --split N, not both "
                       "and not neither")
    overrides = override_values(args.set)
    check_overrides(overrides)
    sample = open_repository(args)[args.proposal][args.sample]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PhysicsWarning)  # each range's line names its flagged checks
        ds = sample.q_resolved(args.range or args.split, beta=args.beta, use_cache=not args.no_cache, **overrides)
    flagged = ds.attrs.get("physics_checks_failed", [[]] * ds.sizes["q_range"])
    print(f"{sample.proposal.key}/{sample.key}: {ds.sizes['q_range']} q ranges (fit {ds.attrs['fit_model']})")
    for index in range(ds.sizes["q_range"]):
        row = ds.isel(q_range=index)
        fitted = row.tau.item() == row.tau.item()  # NaN without a fit
        beta = f", beta = {with_error(row.beta.item(), row.beta_error.item())}" if row.beta_error.item() > 0 else ""
        fit = (f"tau = {with_error(row.tau.item(), row.tau_error.item(), 'ns')}, "
               f"f_q = {with_error(row.f_q.item(), row.f_q_error.item())}{beta}") if fitted else "no fit"
        print(f"  q {row.q_min.item():g}..{row.q_max.item():g} nm^-1 (weighted q {row.q_weighted.item():.3f}, pixels "
              f"{row.q_pixel_min.item():.3f}..{row.q_pixel_max.item():.3f}): {fit}"
              + (f"; physics checks flagged: {', '.join(flagged[index])}" if flagged[index] else ""))
    if ds.sizes["q_range"] >= 3 and "tau" in ds:
        law = tau_q_law(ds)
        print(f"  tau(q) = tau0 (q/q0)^-n: tau0 = {with_error(law.tau0_ns, law.tau0_error_ns, 'ns')} at "
              f"q0 = {law.q0_nm:.3f} nm^-1, n = {with_error(law.n, law.n_error)}, chi2_red = {law.chi2_red:.2f}")


def register(subparsers):
    """Add ``q-resolved`` to the ``eqegs`` sub-commands."""
    p = subparsers.add_parser("q-resolved", help="tau and f_q of many q ranges of one sample and the "
                                                 "tau(q) power law across them")
    add_repository_arguments(p)
    p.add_argument("proposal", metavar="PROPOSAL", help="proposal key (a folder name, e.g. 2025A1234)")
    p.add_argument("sample", metavar="SAMPLE", help="sample key (a folder name, e.g. S001)")
    p.add_argument("--range", action="append", type=q_range_text, default=[], metavar="Q_MIN:Q_MAX",
                   help="a q range in nm^-1, e.g. --range 10:12 (repeatable)")
    p.add_argument("--split", type=int, metavar="N", help="split the sample's q_range into N equal ranges")
    p.add_argument("--beta", type=beta_text, metavar="shared|NUMBER",
                   help="one Kohlrausch beta fitted across the ranges (shared) or fixed (a number); "
                        "default: each range fitted as fit_model says")
    p.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                   help="one-off parameter override (JSON value), e.g. --set fit_model=kww (repeatable)")
    p.add_argument("--no-cache", action="store_true", help="compute without the result cache")
    p.set_defaults(run=cmd_q_resolved)
