#!/usr/bin/python3
"""Generate tests/parity/golden/optim_golden.h, the torch.optim golden data that
tests/parity/test_optim_parity.c compares liblstm's optimizers against.

Usage (Debian's python3 with python3-torch and python3-numpy, not a venv):

    /usr/bin/python3 tests/parity/gen_optim_golden.py tests/parity/golden/optim_golden.h

What is recorded:

 * Datasets: two float32 parameter tensors (a matrix and a vector, values
   ~U(-1, 1)) and a fixed sequence of STEPS gradient sets for them. Each
   gradient set is ~U(-1, 1) times a per-step scale between 0.01 and 100,
   with about one element in nine exactly zero. Cases share the datasets,
   which keeps the header small.
 * Optimizer cases: torch.optim.{SGD, Adagrad, RMSprop, Adam, AdamW}, always
   with foreach=False (the single-tensor path), run for STEPS steps on a
   dataset. Recorded: the parameters after every step (tensor 0 then tensor
   1, flattened row-major), the final state tensors in the layout of
   lstm_optim_save_state() (include/lstm/optim.h) and the step count. A case
   may change param_groups[0]['lr'] after step 10 (lr_after_10; 0 means
   unchanged). The C options are read back from the optimizer's own
   param_groups, so torch's defaults are the values the C test sets.
 * Optimizer defaults: torch's constructor defaults of every kind, to check
   lstm_optim_options_init() (SGD's lr has none in torch).
 * Clipping: torch.nn.utils.clip_grad_norm_ (the returned total norm and the
   clipped gradients) and clip_grad_value_ (the clipped gradients) on two
   gradient tensors.
 * Schedules: get_last_lr() of StepLR and CosineAnnealingLR (torch's
   recursive forms) for epochs 0 .. EPOCHS - 1, as float64.

Every float32 is written as an exact C hex-float literal (float.hex of the
float32 value with an 'f' suffix), every float64 as an exact hex double.
The output is byte-for-byte reproducible: fixed seeds, numpy's PCG64 for
the data, one torch thread, no dictionary or set ordering involved.
"""

import inspect
import re
import sys

import numpy as np
import torch

STEPS = 20
EPOCHS = 21
LR_CHANGE_STEP = 10

# Per-step gradient scales: mostly ~1, some tiny, some large.
GRAD_SCALES = [1.0, 0.5, 2.0, 1.0, 10.0, 0.1, 1.0, 30.0, 1.0, 0.01,
               3.0, 1.0, 100.0, 1.0, 0.3, 1.0, 5.0, 0.05, 1.0, 2.0]
assert len(GRAD_SCALES) == STEPS

KIND = {
    "SGD": "LSTM_OPTIM_SGD",
    "Adagrad": "LSTM_OPTIM_ADAGRAD",
    "RMSprop": "LSTM_OPTIM_RMSPROP",
    "Adam": "LSTM_OPTIM_ADAM",
    "AdamW": "LSTM_OPTIM_ADAMW",
}
CLASS = {
    "SGD": torch.optim.SGD,
    "Adagrad": torch.optim.Adagrad,
    "RMSprop": torch.optim.RMSprop,
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
}


# --------------------------------------------------------------------------
# C literals

def hexf(x):
    """Exact C literal of a float32 value."""
    value = float(np.float32(x))
    assert np.isfinite(value)
    return re.sub(r"\.?0+p", "p", value.hex()) + "f"


def hexd(x):
    """Exact C literal of a float64 value."""
    value = float(x)
    assert np.isfinite(value)
    return re.sub(r"\.?0+p", "p", value.hex())


def float_array(out, name, values, per_line=5):
    values = np.asarray(values, dtype=np.float32).ravel()
    out.append("static const float %s[%d] = {" % (name, values.size))
    for start in range(0, values.size, per_line):
        chunk = values[start:start + per_line]
        out.append("    " + ", ".join(hexf(v) for v in chunk) + ",")
    out.append("};")


def double_array(out, name, values, per_line=3):
    out.append("static const double %s[%d] = {" % (name, len(values)))
    for start in range(0, len(values), per_line):
        chunk = values[start:start + per_line]
        out.append("    " + ", ".join(hexd(v) for v in chunk) + ",")
    out.append("};")


def cdouble(x):
    """A float64 option: exact hex literal with its decimal value alongside."""
    return "%s /* %r */" % (hexd(x), float(x))


# --------------------------------------------------------------------------
# Data

class Dataset:
    def __init__(self, index, shapes, seed):
        rng = np.random.default_rng(seed)
        self.index = index
        self.shapes = shapes
        self.init = [rng.uniform(-1.0, 1.0, size=s).astype(np.float32) for s in shapes]
        self.grads = []
        for t in range(STEPS):
            step = []
            for k, s in enumerate(shapes):
                g = rng.uniform(-1.0, 1.0, size=s).astype(np.float32)
                g = (g * np.float32(GRAD_SCALES[t])).astype(np.float32)
                flat = g.reshape(-1)
                flat[(np.arange(flat.size) + t + 4 * k) % 9 == 0] = 0.0
                step.append(g)
            self.grads.append(step)

    @property
    def count(self):
        return sum(int(np.prod(s)) for s in self.shapes)


DATASETS = [
    Dataset(0, [(4, 5), (7,)], seed=20240601),
    Dataset(1, [(3, 2), (5,)], seed=20240602),
]


def flat(tensors):
    return np.concatenate([t.detach().numpy().astype(np.float32).reshape(-1) for t in tensors])


# --------------------------------------------------------------------------
# Optimizer cases: (name, torch class, constructor options, dataset, lr_after_10)

CASES = [
    # SGD
    ("sgd_plain", "SGD", dict(lr=0.1), 0, 0.0),
    ("sgd_momentum", "SGD", dict(lr=0.1, momentum=0.9), 0, 0.0),
    ("sgd_dampening", "SGD", dict(lr=0.1, momentum=0.9, dampening=0.3), 1, 0.0),
    ("sgd_nesterov", "SGD", dict(lr=0.1, momentum=0.9, nesterov=True), 0, 0.0),
    ("sgd_weight_decay", "SGD", dict(lr=0.1, weight_decay=0.01), 1, 0.0),
    ("sgd_momentum_weight_decay", "SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01), 0, 0.0),
    ("sgd_nesterov_weight_decay", "SGD",
     dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), 1, 0.0),
    ("sgd_maximize", "SGD", dict(lr=0.1, maximize=True), 0, 0.0),
    ("sgd_maximize_momentum_dampening_weight_decay", "SGD",
     dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01, maximize=True), 1, 0.0),
    ("sgd_maximize_nesterov_weight_decay", "SGD",
     dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True), 0, 0.0),
    ("sgd_momentum_lr_change", "SGD", dict(lr=0.1, momentum=0.9), 1, 0.02),
    # Adagrad
    ("adagrad_defaults", "Adagrad", dict(), 0, 0.0),
    ("adagrad_lr_decay", "Adagrad", dict(lr_decay=0.1), 1, 0.0),
    ("adagrad_initial_accumulator", "Adagrad", dict(initial_accumulator_value=0.5), 0, 0.0),
    ("adagrad_weight_decay", "Adagrad", dict(weight_decay=0.05), 1, 0.0),
    ("adagrad_eps", "Adagrad", dict(eps=1e-3), 0, 0.0),
    ("adagrad_maximize", "Adagrad", dict(maximize=True), 1, 0.0),
    ("adagrad_all_options", "Adagrad",
     dict(lr=0.05, lr_decay=0.1, weight_decay=0.05, initial_accumulator_value=0.5, eps=1e-3,
          maximize=True), 0, 0.0),
    ("adagrad_lr_decay_lr_change", "Adagrad", dict(lr=0.01, lr_decay=0.1), 1, 0.05),
    # RMSprop
    ("rmsprop_defaults", "RMSprop", dict(), 0, 0.0),
    ("rmsprop_alpha", "RMSprop", dict(alpha=0.9), 1, 0.0),
    ("rmsprop_centered", "RMSprop", dict(centered=True), 0, 0.0),
    ("rmsprop_momentum", "RMSprop", dict(momentum=0.8), 1, 0.0),
    ("rmsprop_centered_momentum", "RMSprop", dict(centered=True, momentum=0.8), 0, 0.0),
    ("rmsprop_weight_decay", "RMSprop", dict(weight_decay=0.02), 1, 0.0),
    ("rmsprop_maximize", "RMSprop", dict(maximize=True), 0, 0.0),
    ("rmsprop_all_options", "RMSprop",
     dict(lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.02, momentum=0.8, centered=True,
          maximize=True), 1, 0.0),
    ("rmsprop_momentum_lr_change", "RMSprop", dict(momentum=0.8), 0, 0.003),
    # Adam
    ("adam_defaults", "Adam", dict(), 0, 0.0),
    ("adam_betas", "Adam", dict(lr=0.01, betas=(0.8, 0.99)), 1, 0.0),
    ("adam_amsgrad", "Adam", dict(amsgrad=True), 0, 0.0),
    ("adam_weight_decay", "Adam", dict(weight_decay=0.1), 1, 0.0),
    ("adam_eps", "Adam", dict(eps=1e-4), 0, 0.0),
    ("adam_maximize", "Adam", dict(maximize=True), 1, 0.0),
    ("adam_amsgrad_weight_decay", "Adam", dict(amsgrad=True, weight_decay=0.1), 0, 0.0),
    ("adam_beta1_zero", "Adam", dict(lr=0.01, betas=(0.0, 0.999)), 1, 0.0),
    ("adam_all_options", "Adam",
     dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1, amsgrad=True, maximize=True),
     0, 0.0),
    ("adam_lr_change", "Adam", dict(lr=0.001), 1, 0.01),
    # AdamW
    ("adamw_defaults", "AdamW", dict(), 0, 0.0),
    ("adamw_weight_decay", "AdamW", dict(weight_decay=0.1), 1, 0.0),
    ("adamw_amsgrad", "AdamW", dict(amsgrad=True), 0, 0.0),
    ("adamw_maximize", "AdamW", dict(maximize=True), 1, 0.0),
    ("adamw_all_options", "AdamW",
     dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1, amsgrad=True, maximize=True),
     0, 0.0),
    ("adamw_weight_decay_lr_change", "AdamW", dict(lr=0.001, weight_decay=0.1), 1, 0.01),
]


def c_options(kind, group):
    """The case's options as C fields, from torch's resolved param group.
    Fields the kind does not use are 0 (the C test leaves them alone)."""
    opts = dict(flags=[], lr=group["lr"], weight_decay=group["weight_decay"], momentum=0.0,
                dampening=0.0, alpha=0.0, beta1=0.0, beta2=0.0, eps=0.0, lr_decay=0.0,
                initial_accumulator_value=0.0)
    if group.get("maximize"):
        opts["flags"].append("LSTM_OPTIM_MAXIMIZE")
    if kind == "SGD":
        opts["momentum"] = group["momentum"]
        opts["dampening"] = group["dampening"]
        if group["nesterov"]:
            opts["flags"].append("LSTM_OPTIM_NESTEROV")
    elif kind == "Adagrad":
        opts["eps"] = group["eps"]
        opts["lr_decay"] = group["lr_decay"]
        opts["initial_accumulator_value"] = group["initial_accumulator_value"]
    elif kind == "RMSprop":
        opts["eps"] = group["eps"]
        opts["alpha"] = group["alpha"]
        opts["momentum"] = group["momentum"]
        if group["centered"]:
            opts["flags"].append("LSTM_OPTIM_CENTERED")
    else:
        opts["eps"] = group["eps"]
        opts["beta1"], opts["beta2"] = group["betas"]
        if group["amsgrad"]:
            opts["flags"].append("LSTM_OPTIM_AMSGRAD")
    return opts


def state_arrays(kind, group, optimizer, params):
    """The final state in lstm_optim_save_state()'s order, and the step count."""
    if kind == "SGD":
        names = ["momentum_buffer"] if group["momentum"] != 0 else []
    elif kind == "Adagrad":
        names = ["sum"]
    elif kind == "RMSprop":
        names = ["square_avg"]
        if group["centered"]:
            names.append("grad_avg")
        if group["momentum"] > 0:
            names.append("momentum_buffer")
    else:
        names = ["exp_avg", "exp_avg_sq"]
        if group["amsgrad"]:
            names.append("max_exp_avg_sq")
    arrays = [flat([optimizer.state[p][n] for p in params]) for n in names]
    for p in params:
        if "step" in optimizer.state[p]:
            assert int(optimizer.state[p]["step"]) == STEPS
    return names, arrays


def run_case(case):
    name, kind, kwargs, dataset_index, lr_after_10 = case
    data = DATASETS[dataset_index]
    params = [torch.tensor(p, requires_grad=True) for p in data.init]
    optimizer = CLASS[kind](params, foreach=False, **kwargs)
    group = optimizer.param_groups[0]
    assert group["foreach"] is False
    opts = c_options(kind, group)
    trajectory = []
    for t in range(STEPS):
        if t == LR_CHANGE_STEP and lr_after_10 != 0.0:
            group["lr"] = lr_after_10
        for p, g in zip(params, data.grads[t]):
            p.grad = torch.tensor(g)
        optimizer.step()
        trajectory.append(flat(params))
    names, arrays = state_arrays(kind, group, optimizer, params)
    return dict(name=name, kind=kind, opts=opts, dataset=dataset_index, lr_after_10=lr_after_10,
                trajectory=np.stack(trajectory), state_names=names, state=arrays)


def torch_defaults(kind):
    """torch's constructor defaults, as C option fields."""
    sig = inspect.signature(CLASS[kind].__init__).parameters

    def get(key):
        return sig[key].default

    lr = get("lr")
    has_lr = isinstance(lr, float)
    d = dict(has_lr=has_lr, lr=lr if has_lr else 0.0, weight_decay=float(get("weight_decay")),
             momentum=0.0, dampening=0.0, alpha=0.0, beta1=0.0, beta2=0.0, eps=0.0,
             lr_decay=0.0, initial_accumulator_value=0.0)
    if kind == "SGD":
        d["momentum"] = float(get("momentum"))
        d["dampening"] = float(get("dampening"))
        assert get("nesterov") is False
    elif kind == "Adagrad":
        d["eps"] = float(get("eps"))
        d["lr_decay"] = float(get("lr_decay"))
        d["initial_accumulator_value"] = float(get("initial_accumulator_value"))
    elif kind == "RMSprop":
        d["eps"] = float(get("eps"))
        d["alpha"] = float(get("alpha"))
        d["momentum"] = float(get("momentum"))
        assert get("centered") is False
    else:
        d["eps"] = float(get("eps"))
        d["beta1"], d["beta2"] = (float(b) for b in get("betas"))
        assert get("amsgrad") is False
    assert get("maximize") is False
    return d


# --------------------------------------------------------------------------
# Clipping: (name, by_value, limit, shapes, seed, gradient scale)

CLIPS = [
    ("clip_norm_clips", False, 0.5, [(4, 5), (7,)], 301, 1.0),
    ("clip_norm_no_clip", False, 1e3, [(4, 5), (7,)], 302, 1.0),
    ("clip_norm_large_grads", False, 1.0, [(6, 3), (9,)], 303, 100.0),
    ("clip_norm_at_norm", False, None, [(4, 5), (7,)], 304, 1e-3),
    ("clip_norm_zero_grads", False, 1.0, [(2, 3), (4,)], 305, 0.0),
    ("clip_value_0.3", True, 0.3, [(4, 5), (7,)], 306, 1.0),
    ("clip_value_no_clip", True, 10.0, [(4, 5), (7,)], 307, 3.0),
    ("clip_value_zero", True, 0.0, [(2, 3), (4,)], 308, 1.0),
]


def run_clip(case):
    name, by_value, limit, shapes, seed, scale = case
    rng = np.random.default_rng(seed)
    grads = [(rng.uniform(-1.0, 1.0, size=s).astype(np.float32) * np.float32(scale))
             .astype(np.float32) for s in shapes]
    if limit is None:
        # max_norm equal to the norm itself: only the 1e-6 that
        # clip_grad_norm_ adds to the norm makes it scale, by 1 - 1e-6 / norm.
        limit = float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads)))
    params = [torch.zeros(s, requires_grad=True) for s in shapes]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    total_norm = 0.0
    if by_value:
        torch.nn.utils.clip_grad_value_(params, limit)
    else:
        total_norm = float(torch.nn.utils.clip_grad_norm_(params, limit))
    clipped = np.concatenate([p.grad.numpy().reshape(-1) for p in params])
    return dict(name=name, by_value=by_value, limit=limit, shapes=shapes,
                grads=np.concatenate([g.reshape(-1) for g in grads]), clipped=clipped,
                total_norm=total_norm)


# --------------------------------------------------------------------------
# Schedules: (name, cosine, base_lr, gamma, step_size, eta_min, t_max)

SCHEDULES = [
    ("step_lr", False, 0.1, 0.5, 3, 0.0, 0),
    ("step_lr_every_epoch", False, 0.1, 0.9, 1, 0.0, 0),
    ("cosine", True, 0.1, 0.0, 0, 0.001, 10),
    ("cosine_eta_min_zero", True, 0.1, 0.0, 0, 0.0, 7),
]


def run_schedule(case):
    name, cosine, base_lr, gamma, step_size, eta_min, t_max = case
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr, foreach=False)
    if cosine:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max,
                                                               eta_min=eta_min)
    else:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(1, EPOCHS):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return dict(name=name, cosine=cosine, base_lr=base_lr, gamma=gamma, step_size=step_size,
                eta_min=eta_min, t_max=t_max, lrs=lrs)


# --------------------------------------------------------------------------
# Output

HEADER_TYPES = """
#define OPTIM_GOLDEN_STEPS %(steps)d
#define OPTIM_GOLDEN_LR_CHANGE_STEP %(lr_step)d
#define OPTIM_GOLDEN_EPOCHS %(epochs)d

/* Two parameter tensors and OPTIM_GOLDEN_STEPS gradient sets for them. */
struct optim_golden_dataset {
    size_t sizes[2];    /* elements of tensor 0 and tensor 1 */
    size_t count;       /* sizes[0] + sizes[1] */
    const float *init;  /* [count]: tensor 0 then tensor 1, row-major */
    const float *grads; /* [OPTIM_GOLDEN_STEPS][count] */
};

/* One optimizer run. Option fields the kind does not use are 0. */
struct optim_golden_case {
    const char *name;
    lstm_optim_kind kind;
    uint32_t flags;
    double lr;
    double weight_decay;
    double momentum;
    double dampening;
    double alpha;
    double beta1;
    double beta2;
    double eps;
    double lr_decay;
    double initial_accumulator_value;
    double lr_after_10;  /* lr set after step OPTIM_GOLDEN_LR_CHANGE_STEP; 0 = unchanged */
    const struct optim_golden_dataset *data;
    const float *params; /* [OPTIM_GOLDEN_STEPS][count]: parameters after each step */
    uint64_t steps;      /* torch's step count at the end */
    size_t state_arrays; /* S of lstm_optim_save_state() */
    const float *state;  /* [state_arrays][count] in lstm_optim_save_state() order */
};

/* torch's constructor defaults of one kind (fields it does not use are 0). */
struct optim_golden_defaults {
    lstm_optim_kind kind;
    int has_lr; /* torch.optim.SGD has no default lr */
    double lr;
    double weight_decay;
    double momentum;
    double dampening;
    double alpha;
    double beta1;
    double beta2;
    double eps;
    double lr_decay;
    double initial_accumulator_value;
};

/* clip_grad_norm_ (by_value 0, limit = max_norm) or clip_grad_value_. */
struct optim_golden_clip {
    const char *name;
    int by_value;
    double limit;
    size_t sizes[2];
    size_t count;
    const float *grads;   /* [count] before clipping */
    const float *clipped; /* [count] after clipping */
    double total_norm;    /* clip_grad_norm_'s return value (float32); 0 for by_value */
};

/* StepLR (cosine 0) or CosineAnnealingLR (cosine 1): get_last_lr() per epoch. */
struct optim_golden_schedule {
    const char *name;
    int cosine;
    double base_lr;
    double gamma;
    uint64_t step_size;
    double eta_min;
    uint64_t t_max;
    const double *lr; /* [OPTIM_GOLDEN_EPOCHS], epochs 0 .. OPTIM_GOLDEN_EPOCHS - 1 */
};
"""


def ident(name):
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def emit(path):
    torch.set_num_threads(1)
    out = []
    out.append("/*")
    out.append(" * Golden data for tests/parity/test_optim_parity.c, from torch.optim %s."
               % torch.__version__)
    out.append(" * Generated by tests/parity/gen_optim_golden.py; do not edit, rerun it:")
    out.append(" *     /usr/bin/python3 tests/parity/gen_optim_golden.py tests/parity/golden/optim_golden.h")
    out.append(" */")
    out.append("#ifndef OPTIM_GOLDEN_H")
    out.append("#define OPTIM_GOLDEN_H")
    out.append("")
    out.append("#include <stddef.h>")
    out.append("#include <stdint.h>")
    out.append("")
    out.append('#include "lstm/optim.h"')
    out.append(HEADER_TYPES % dict(steps=STEPS, lr_step=LR_CHANGE_STEP, epochs=EPOCHS))

    out.append("/* ---- datasets */")
    for d in DATASETS:
        out.append("")
        out.append("/* dataset %d: tensors %s */"
                   % (d.index, " and ".join(str(s) for s in d.shapes)))
        float_array(out, "optim_golden_data%d_init" % d.index, np.concatenate(
            [p.reshape(-1) for p in d.init]))
        float_array(out, "optim_golden_data%d_grads" % d.index, np.concatenate(
            [g.reshape(-1) for step in d.grads for g in step]))
        sizes = [int(np.prod(s)) for s in d.shapes]
        out.append("static const struct optim_golden_dataset optim_golden_data%d = {" % d.index)
        out.append("    {%d, %d}, %d, optim_golden_data%d_init, optim_golden_data%d_grads" %
                   (sizes[0], sizes[1], d.count, d.index, d.index))
        out.append("};")

    out.append("")
    out.append("/* ---- optimizer cases */")
    results = [run_case(c) for c in CASES]
    for r in results:
        tag = ident(r["name"])
        out.append("")
        out.append("/* %s: %s */" % (r["name"], r["kind"]))
        float_array(out, "optim_golden_%s_params" % tag, r["trajectory"])
        if r["state"]:
            out.append("/* state: %s */" % ", ".join(r["state_names"]))
            float_array(out, "optim_golden_%s_state" % tag, np.concatenate(r["state"]))
    out.append("")
    out.append("static const struct optim_golden_case optim_golden_cases[] = {")
    for r in results:
        tag = ident(r["name"])
        o = r["opts"]
        out.append("    {")
        out.append('        "%s", %s, %s,' % (r["name"], KIND[r["kind"]],
                                              " | ".join(o["flags"]) or "0"))
        for field in ("lr", "weight_decay", "momentum", "dampening", "alpha", "beta1", "beta2",
                      "eps", "lr_decay", "initial_accumulator_value"):
            out.append("        %s, /* %s */" % (cdouble(o[field]), field))
        out.append("        %s, /* lr_after_10 */" % cdouble(r["lr_after_10"]))
        out.append("        &optim_golden_data%d, optim_golden_%s_params, %d, %d, %s," % (
            r["dataset"], tag, STEPS, len(r["state"]),
            ("optim_golden_%s_state" % tag) if r["state"] else "NULL"))
        out.append("    },")
    out.append("};")
    out.append("#define OPTIM_GOLDEN_CASE_COUNT "
               "(sizeof optim_golden_cases / sizeof optim_golden_cases[0])")

    out.append("")
    out.append("/* ---- torch's defaults */")
    out.append("static const struct optim_golden_defaults optim_golden_defaults[] = {")
    for kind in CLASS:
        d = torch_defaults(kind)
        fields = ", ".join(hexd(d[f]) for f in (
            "lr", "weight_decay", "momentum", "dampening", "alpha", "beta1", "beta2", "eps",
            "lr_decay", "initial_accumulator_value"))
        out.append("    {%s, %d, %s}," % (KIND[kind], int(d["has_lr"]), fields))
    out.append("};")
    out.append("#define OPTIM_GOLDEN_DEFAULTS_COUNT "
               "(sizeof optim_golden_defaults / sizeof optim_golden_defaults[0])")

    out.append("")
    out.append("/* ---- clipping */")
    clips = [run_clip(c) for c in CLIPS]
    for c in clips:
        tag = ident(c["name"])
        out.append("")
        float_array(out, "optim_golden_%s_grads" % tag, c["grads"])
        float_array(out, "optim_golden_%s_clipped" % tag, c["clipped"])
    out.append("")
    out.append("static const struct optim_golden_clip optim_golden_clips[] = {")
    for c in clips:
        tag = ident(c["name"])
        sizes = [int(np.prod(s)) for s in c["shapes"]]
        out.append('    {"%s", %d, %s, {%d, %d}, %d, optim_golden_%s_grads, '
                   'optim_golden_%s_clipped, %s},' % (
                       c["name"], int(c["by_value"]), cdouble(c["limit"]), sizes[0], sizes[1],
                       sum(sizes), tag, tag, cdouble(c["total_norm"])))
    out.append("};")
    out.append("#define OPTIM_GOLDEN_CLIP_COUNT "
               "(sizeof optim_golden_clips / sizeof optim_golden_clips[0])")

    out.append("")
    out.append("/* ---- learning-rate schedules */")
    schedules = [run_schedule(s) for s in SCHEDULES]
    for s in schedules:
        out.append("")
        double_array(out, "optim_golden_%s_lr" % ident(s["name"]), s["lrs"])
    out.append("")
    out.append("static const struct optim_golden_schedule optim_golden_schedules[] = {")
    for s in schedules:
        out.append('    {"%s", %d, %s, %s, %d, %s, %d, optim_golden_%s_lr},' % (
            s["name"], int(s["cosine"]), hexd(s["base_lr"]), hexd(s["gamma"]), s["step_size"],
            hexd(s["eta_min"]), s["t_max"], ident(s["name"])))
    out.append("};")
    out.append("#define OPTIM_GOLDEN_SCHEDULE_COUNT "
               "(sizeof optim_golden_schedules / sizeof optim_golden_schedules[0])")
    out.append("")
    out.append("#endif /* OPTIM_GOLDEN_H */")

    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(out) + "\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_optim_golden.py OUTPUT.h")
    emit(sys.argv[1])


if __name__ == "__main__":
    main()
