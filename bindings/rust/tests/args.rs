//! The argument-struct calls of liblstm 0.3.0: each field of Input,
//! OutputBuffers, OutputGrads and InputGrads reaching its place in the C
//! structs (a reference forward from the equations, and finite
//! differences, so that h0 passed as c0, or dh_n as dc_n, fails), a call's
//! layout, and the lengths of stream and truncated-BPTT chunks.
mod common;

use common::{model, same_bits, Rng};
use lstm::{
    status, sys, Config, Input, InputGrads, Layout, Model, OutputBuffers, OutputGrads, State,
    TensorKind, Workspace,
};

/// `[outer][inner][features]` -> `[inner][outer][features]`, by index.
fn transpose(v: &[f32], outer: usize, inner: usize, features: usize) -> Vec<f32> {
    assert_eq!(v.len(), outer * inner * features);
    let mut out = vec![0.0; v.len()];
    for a in 0..outer {
        for b in 0..inner {
            for k in 0..features {
                out[(b * outer + a) * features + k] = v[(a * inner + b) * features + k];
            }
        }
    }
    out
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&p, &q)| p as f64 * q as f64).sum()
}

fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&p, &q)| (p as f64 - q).abs())
        .fold(0.0, f64::max)
}

/// y, h_n and c_n of one time-major layer (no projection, no peepholes),
/// in f64 straight from the equations of lstm/model.h, with W and b read
/// from the parameter buffer where lstm_model_tensor() says they are.
fn reference_layer(
    m: &Model,
    (t, b): (usize, usize),
    x: &[f32],
    h0: &[f32],
    c0: &[f32],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (i, h) = (m.config().input_size, m.config().hidden_size);
    let (w_off, _, cols) = m.tensor(0, 0, TensorKind::Weight).unwrap();
    let (b_off, _, _) = m.tensor(0, 0, TensorKind::Bias).unwrap();
    assert_eq!(cols, h + i);
    let p = m.params();
    let w = |row: usize, col: usize| p[w_off + row * cols + col] as f64;
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let mut hs: Vec<f64> = h0.iter().map(|&v| v as f64).collect();
    let mut cs: Vec<f64> = c0.iter().map(|&v| v as f64).collect();
    let mut y = vec![0.0; t * b * h];
    for step in 0..t {
        for s in 0..b {
            let xs = &x[(step * b + s) * i..(step * b + s + 1) * i];
            /* a = W [h_{t-1}, x_t] + b, gate blocks i, f, g, o */
            let a: Vec<f64> = (0..4 * h)
                .map(|row| {
                    let recurrent: f64 = (0..h).map(|k| w(row, k) * hs[s * h + k]).sum();
                    let input: f64 = (0..i).map(|k| w(row, h + k) * xs[k] as f64).sum();
                    p[b_off + row] as f64 + recurrent + input
                })
                .collect();
            for u in 0..h {
                let (ig, fg) = (sigmoid(a[u]), sigmoid(a[h + u]));
                let (gg, og) = (a[2 * h + u].tanh(), sigmoid(a[3 * h + u]));
                cs[s * h + u] = fg * cs[s * h + u] + ig * gg;
                hs[s * h + u] = og * cs[s * h + u].tanh();
                y[(step * b + s) * h + u] = hs[s * h + u];
            }
        }
    }
    (y, hs, cs)
}

#[test]
fn input_and_output_fields_reach_their_places() {
    let (t, b, i, h) = (4, 3, 3, 5);
    let m = model(&Config::new(i, h), 31);
    let mut ws = Workspace::new(&m).unwrap();
    let mut rng = Rng::new(2);
    let x = rng.vec(t * b * i);
    let h0 = rng.vec(b * h);
    let c0: Vec<f32> = rng.vec(b * h).iter().map(|v| 2.0 * v).collect();
    let (y, h_n, c_n) = reference_layer(&m, (t, b), &x, &h0, &c0);
    let out = m
        .forward(&mut ws, &Input::new(t, b, &x).h0(&h0).c0(&c0))
        .unwrap();
    for (name, ours, want) in [
        ("y", &out.y, &y),
        ("h_n", &out.h_n, &h_n),
        ("c_n", &out.c_n, &c_n),
    ] {
        let diff = max_diff(ours, want);
        assert!(
            diff < 1e-5,
            "{} differs from the reference by {}",
            name,
            diff
        );
    }
    /* the same through caller-owned buffers, each written where it belongs */
    let (mut y2, mut h2, mut c2) = (vec![0.0; t * b * h], vec![0.0; b * h], vec![0.0; b * h]);
    m.forward_into(
        &mut ws,
        &Input::new(t, b, &x).h0(&h0).c0(&c0),
        OutputBuffers {
            y: Some(&mut y2),
            h_n: Some(&mut h2),
            c_n: Some(&mut c2),
        },
    )
    .unwrap();
    assert!(same_bits(&y2, &out.y) && same_bits(&h2, &out.h_n) && same_bits(&c2, &out.c_n));
}

#[test]
fn gradient_fields_reach_their_places() {
    /* L = <gy, y> + <gh, h_n> + <gc, c_n>. A backward given dy = gy,
     * dh_n = gh and dc_n = gc returns dL/dx, dL/dh0 and dL/dc0; each is
     * checked along a random direction against central differences of L
     * through inference calls. h and c have the same shape here (no
     * projection), so a field passed in another's place stays in bounds
     * and fails on its values. */
    let (t, b, i, h) = (4, 2, 3, 5);
    let config = Config::new(i, h).num_layers(2);
    let mut m = model(&config, 8);
    let mut ws = Workspace::new(&m).unwrap();
    let mut rng = Rng::new(5);
    let x = rng.vec(t * b * i);
    let h0 = rng.vec(2 * b * h);
    let c0 = rng.vec(2 * b * h);
    let gy = rng.vec(t * b * h);
    let gh = rng.vec(2 * b * h);
    let gc = rng.vec(2 * b * h);
    m.forward_train(&mut ws, &Input::new(t, b, &x).h0(&h0).c0(&c0))
        .unwrap();
    let (mut dx, mut dh0, mut dc0) = (vec![0.0; x.len()], vec![0.0; h0.len()], vec![0.0; c0.len()]);
    m.backward_into(
        &mut ws,
        &OutputGrads {
            dy: Some(&gy),
            dh_n: Some(&gh),
            dc_n: Some(&gc),
        },
        InputGrads {
            dx: Some(&mut dx),
            dh0: Some(&mut dh0),
            dc0: Some(&mut dc0),
        },
    )
    .unwrap();

    let loss = |m: &Model, ws: &mut Workspace, x: &[f32], h0: &[f32], c0: &[f32]| -> f64 {
        let o = m.forward(ws, &Input::new(t, b, x).h0(h0).c0(c0)).unwrap();
        dot(&gy, &o.y) + dot(&gh, &o.h_n) + dot(&gc, &o.c_n)
    };
    let eps = 4e-3f32;
    for (name, which, grad) in [("dx", 0, &dx), ("dh0", 1, &dh0), ("dc0", 2, &dc0)] {
        let base = [&x, &h0, &c0][which];
        let direction = rng.vec(base.len());
        let moved = |sign: f32| -> Vec<f32> {
            base.iter()
                .zip(&direction)
                .map(|(&v, &d)| v + sign * eps * d)
                .collect()
        };
        let mut args = [x.clone(), h0.clone(), c0.clone()];
        args[which] = moved(1.0);
        let plus = loss(&m, &mut ws, &args[0], &args[1], &args[2]);
        args[which] = moved(-1.0);
        let minus = loss(&m, &mut ws, &args[0], &args[1], &args[2]);
        let numeric = (plus - minus) / (2.0 * eps as f64);
        let analytic = dot(grad, &direction);
        assert!(
            (numeric - analytic).abs() <= 1e-3 * analytic.abs().max(1.0),
            "{}: <{}, v> = {} but L changes at {} along v",
            name,
            name,
            analytic,
            numeric
        );
    }
}

struct TrainRun {
    y: Vec<f32>,
    h_n: Vec<f32>,
    c_n: Vec<f32>,
    dx: Vec<f32>,
    dh0: Vec<f32>,
    dc0: Vec<f32>,
    grads: Vec<f32>,
}

fn train_run(
    m: &mut Model,
    ws: &mut Workspace,
    input: &Input<'_>,
    dy: &[f32],
    dh: &[f32],
    dc: &[f32],
) -> TrainRun {
    m.zero_grads().unwrap();
    let out = m.forward_train(ws, input).unwrap();
    let mut dx = vec![0.0; input.x.len()];
    let mut dh0 = vec![0.0; dh.len()];
    let mut dc0 = vec![0.0; dc.len()];
    m.backward_into(
        ws,
        &OutputGrads {
            dy: Some(dy),
            dh_n: Some(dh),
            dc_n: Some(dc),
        },
        InputGrads {
            dx: Some(&mut dx),
            dh0: Some(&mut dh0),
            dc0: Some(&mut dc0),
        },
    )
    .unwrap();
    TrainRun {
        y: out.y,
        h_n: out.h_n,
        c_n: out.c_n,
        dx,
        dh0,
        dc0,
        grads: m.grads().to_vec(),
    }
}

#[test]
fn layout_of_the_call_gives_the_transpose() {
    /* A call in the other layout than the model's gives, bit for bit, the
     * transpose (made here by index) of what the model's own layout gives,
     * forward and backward; the model's own layout named gives its bits. */
    let (t, b, i, h) = (6, 4, 3, 5);
    let lengths = [6usize, 3, 5, 1];
    for base in [
        Config::new(i, h),
        Config::new(i, h)
            .num_layers(2)
            .bidirectional(true)
            .proj_size(2),
    ] {
        for model_batch_first in [false, true] {
            let config = base.clone().batch_first(model_batch_first);
            let mut m = model(&config, 21);
            let mut ws = Workspace::new(&m).unwrap();
            let out_size = config.output_size();
            let ld = config.num_layers * config.directions();
            let r = config.state_size();
            let mut rng = Rng::new(4);
            let x = rng.vec(t * b * i); /* in the model's layout */
            let h0 = rng.vec(ld * b * r);
            let c0 = rng.vec(ld * b * h);
            let dy = rng.vec(t * b * out_size);
            let dh = rng.vec(ld * b * r);
            let dc = rng.vec(ld * b * h);
            let own = Input::new(t, b, &x).lengths(&lengths).h0(&h0).c0(&c0);
            let want = train_run(&mut m, &mut ws, &own, &dy, &dh, &dc);
            let want_infer = m.forward(&mut ws, &own).unwrap();

            let (outer, inner) = if model_batch_first { (b, t) } else { (t, b) };
            let (other_layout, same_layout) = if model_batch_first {
                (Layout::TimeMajor, Layout::BatchMajor)
            } else {
                (Layout::BatchMajor, Layout::TimeMajor)
            };
            let x_other = transpose(&x, outer, inner, i);
            let dy_other = transpose(&dy, outer, inner, out_size);
            let other = Input {
                x: &x_other,
                layout: other_layout,
                ..own
            };
            let got = train_run(&mut m, &mut ws, &other, &dy_other, &dh, &dc);
            assert!(same_bits(
                &transpose(&got.y, inner, outer, out_size),
                &want.y
            ));
            assert!(same_bits(&transpose(&got.dx, inner, outer, i), &want.dx));
            for (ours, theirs) in [
                (&got.h_n, &want.h_n),
                (&got.c_n, &want.c_n),
                (&got.dh0, &want.dh0),
                (&got.dc0, &want.dc0),
                (&got.grads, &want.grads),
            ] {
                assert!(same_bits(ours, theirs));
            }
            let infer = m.forward(&mut ws, &other).unwrap();
            assert!(same_bits(
                &transpose(&infer.y, inner, outer, out_size),
                &want_infer.y
            ));

            let named = Input {
                layout: same_layout,
                ..own
            };
            let got = train_run(&mut m, &mut ws, &named, &dy, &dh, &dc);
            assert!(same_bits(&got.y, &want.y) && same_bits(&got.dx, &want.dx));
            assert!(same_bits(&got.grads, &want.grads));
        }
    }
}

#[test]
fn stream_chunk_lengths_layout_and_final_state() {
    let (t, b, i, h, p) = (5, 3, 3, 5, 2);
    let m = model(&Config::new(i, h).num_layers(2).proj_size(p), 17);
    let mut ws = Workspace::new(&m).unwrap();
    let x = Rng::new(3).vec(t * b * i);
    let lengths = [5usize, 2, 3];
    let whole = m
        .forward(&mut ws, &Input::new(t, b, &x).lengths(&lengths))
        .unwrap();
    let mut state = State::new(&m, b).unwrap();
    let got = state
        .run_chunk(&m, &Input::new(t, b, &x).lengths(&lengths))
        .unwrap();
    assert!(same_bits(&got.y, &whole.y));
    assert!(same_bits(&got.h_n, &whole.h_n) && same_bits(&got.c_n, &whole.c_n));
    let (state_h, state_c) = state.get().unwrap();
    assert!(same_bits(&state_h, &got.h_n) && same_bits(&state_c, &got.c_n));
    for (s, &n) in lengths.iter().enumerate() {
        /* zero past the stream's end */
        for step in n..t {
            assert!(got.y[(step * b + s) * p..(step * b + s + 1) * p]
                .iter()
                .all(|&v| v == 0.0));
        }
        /* its state is the one at its own last step: the stream alone */
        let lone_x: Vec<f32> = (0..n)
            .flat_map(|step| x[(step * b + s) * i..(step * b + s + 1) * i].to_vec())
            .collect();
        let mut lone = State::new(&m, 1).unwrap();
        lone.run(&m, n, &lone_x).unwrap();
        let (lone_h, _) = lone.get().unwrap();
        for layer in 0..2 {
            let ours = &got.h_n[(layer * b + s) * p..(layer * b + s + 1) * p];
            let alone: Vec<f64> = lone_h[layer * p..(layer + 1) * p]
                .iter()
                .map(|&v| v as f64)
                .collect();
            assert!(
                max_diff(ours, &alone) < 1e-6,
                "stream {} layer {}",
                s,
                layer
            );
        }
    }
    let mut full = State::new(&m, b).unwrap();
    full.run(&m, t, &x).unwrap();
    assert!(!same_bits(&full.get().unwrap().0, &got.h_n)); /* lengths were not ignored */

    /* the next chunk continues from each stream's own last step */
    let x2 = Rng::new(4).vec(2 * b * i);
    let next = state.run(&m, 2, &x2).unwrap();
    let from = m
        .forward(&mut ws, &Input::new(2, b, &x2).h0(&got.h_n).c0(&got.c_n))
        .unwrap();
    assert!(same_bits(&next, &from.y));

    /* batch-major chunk on a time-major model */
    state.reset().unwrap();
    let x_bt = transpose(&x, t, b, i);
    let got_bt = state
        .run_chunk(
            &m,
            &Input::new(t, b, &x_bt)
                .lengths(&lengths)
                .layout(Layout::BatchMajor),
        )
        .unwrap();
    assert!(same_bits(&transpose(&got_bt.y, b, t, p), &whole.y));
    assert!(same_bits(&got_bt.h_n, &whole.h_n));

    /* refused before C: h0 (the state holds it), another batch, a short y */
    let before = state.get().unwrap();
    let h0 = vec![0.0; 2 * b * p];
    let err = state
        .run_chunk(&m, &Input::new(t, b, &x).h0(&h0))
        .unwrap_err();
    assert_eq!(err.status, status::ARG);
    let err = state
        .run_chunk(&m, &Input::new(t, 1, &x[..t * i]))
        .unwrap_err();
    assert_eq!(err.status, status::SHAPE);
    let mut short = vec![0.0; 1];
    let err = state
        .run_chunk_into(
            &m,
            &Input::new(t, b, &x),
            OutputBuffers {
                y: Some(&mut short),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.status, status::SHAPE);
    assert_eq!(state.get().unwrap(), before);
}

#[test]
fn train_chunk_with_lengths_and_layout() {
    let (t, b, i, h) = (6, 3, 2, 5);
    let mut m = model(&Config::new(i, h), 3);
    let mut ws = Workspace::new(&m).unwrap();
    let mut rng = Rng::new(6);
    let x = rng.vec(t * b * i);
    let dy = rng.vec(t * b * h);
    let lengths = [6usize, 2, 4];
    let whole = train_run(
        &mut m,
        &mut ws,
        &Input::new(t, b, &x).lengths(&lengths),
        &dy,
        &vec![0.0; b * h],
        &vec![0.0; b * h],
    );

    m.zero_grads().unwrap();
    let mut state = State::new(&m, b).unwrap();
    let x_bt = transpose(&x, t, b, i);
    let (mut y, mut h_n, mut c_n) = (vec![0.0; t * b * h], vec![0.0; b * h], vec![0.0; b * h]);
    m.forward_train_chunk_into(
        &mut ws,
        &mut state,
        &Input::new(t, b, &x_bt)
            .lengths(&lengths)
            .layout(Layout::BatchMajor),
        OutputBuffers {
            y: Some(&mut y),
            h_n: Some(&mut h_n),
            c_n: Some(&mut c_n),
        },
    )
    .unwrap();
    assert!(same_bits(&transpose(&y, b, t, h), &whole.y));
    assert!(same_bits(&h_n, &whole.h_n) && same_bits(&c_n, &whole.c_n));
    assert_eq!(state.get().unwrap(), (h_n.clone(), c_n.clone()));
    let dy_bt = transpose(&dy, t, b, h);
    let mut dx_bt = vec![0.0; x.len()];
    m.backward_into(
        &mut ws,
        &OutputGrads {
            dy: Some(&dy_bt),
            ..Default::default()
        },
        InputGrads {
            dx: Some(&mut dx_bt),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(same_bits(&transpose(&dx_bt, b, t, i), &whole.dx));
    assert!(same_bits(m.grads(), &whole.grads));
}

macro_rules! check_struct {
    ($init:ident, $value:expr, $type:ty) => {{
        let size = std::mem::size_of::<$type>();
        let mut filled = $value;
        filled.struct_size = 0;
        // SAFETY: filled is a valid struct of `size` bytes.
        assert_eq!(unsafe { sys::$init(&mut filled, size) }, sys::LSTM_OK);
        assert_eq!(
            filled,
            $value,
            "{} fills what the constant holds",
            stringify!($init)
        );
        // SAFETY: as above; a smaller size makes C write less, or nothing.
        assert_eq!(
            unsafe { sys::$init(&mut filled, size - 1) },
            sys::LSTM_E_ARG,
            "{}: the struct is larger than its first version",
            stringify!($init)
        );
    }};
}

#[test]
fn argument_structs_have_the_library_size_and_defaults() {
    /* C accepts size_of and refuses a byte less: each mirror has exactly
     * the size of the struct's first (0.3.0) version. What the _init
     * functions fill in is what the _INIT constants hold. */
    check_struct!(
        lstm_sequences_init,
        sys::LSTM_SEQUENCES_INIT,
        sys::lstm_sequences
    );
    check_struct!(lstm_inputs_init, sys::LSTM_INPUTS_INIT, sys::lstm_inputs);
    check_struct!(lstm_outputs_init, sys::LSTM_OUTPUTS_INIT, sys::lstm_outputs);
    check_struct!(
        lstm_output_grads_init,
        sys::LSTM_OUTPUT_GRADS_INIT,
        sys::lstm_output_grads
    );
    check_struct!(
        lstm_input_grads_init,
        sys::LSTM_INPUT_GRADS_INIT,
        sys::lstm_input_grads
    );
}
