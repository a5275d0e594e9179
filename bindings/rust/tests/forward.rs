mod common;

use common::{model, same_bits, Rng};
use lstm::{Config, Input, Model, OutputBuffers, TensorKind, Workspace};

#[test]
fn version_is_reported() {
    assert!(!lstm::version().is_empty());
    assert!(lstm::version_number() >= 100 || lstm::version().starts_with("0."));
}

#[test]
fn shapes_identical_rows_and_final_state() {
    let (t, b, i, h) = (4, 3, 3, 5);
    let config = Config::new(i, h).num_layers(2);
    let model = model(&config, 7);
    let mut ws = Workspace::new(&model).unwrap();
    let mut rng = Rng::new(1);
    let mut x = rng.vec(t * b * i);
    /* sequence 1 is a copy of sequence 0 */
    for step in 0..t {
        let (row0, row1) = ((step * b) * i, (step * b + 1) * i);
        for k in 0..i {
            x[row1 + k] = x[row0 + k];
        }
    }
    let out = model.forward(&mut ws, &Input::new(t, b, &x)).unwrap();
    assert_eq!(out.y.len(), t * b * h);
    assert_eq!(out.h_n.len(), 2 * b * h);
    assert_eq!(out.c_n.len(), 2 * b * h);
    for step in 0..t {
        let y0 = &out.y[(step * b) * h..(step * b + 1) * h];
        let y1 = &out.y[(step * b + 1) * h..(step * b + 2) * h];
        let y2 = &out.y[(step * b + 2) * h..(step * b + 3) * h];
        assert!(
            same_bits(y0, y1),
            "identical inputs gave different outputs at step {}",
            step
        );
        assert!(!same_bits(y0, y2));
    }
    /* h_n of the last layer is y at the last step */
    let last_layer = &out.h_n[b * h..2 * b * h];
    assert!(same_bits(last_layer, &out.y[(t - 1) * b * h..]));
    assert!(out.y.iter().all(|v| v.is_finite() && v.abs() < 1.0));
}

#[test]
fn bidirectional_projection_batch_first() {
    let (t, b, i, h, p) = (5, 2, 4, 6, 3);
    let config = Config::new(i, h)
        .num_layers(2)
        .bidirectional(true)
        .proj_size(p)
        .batch_first(true);
    let model = model(&config, 3);
    assert_eq!(model.config().output_size(), 2 * p);
    let mut ws = Workspace::new(&model).unwrap();
    let x = Rng::new(2).vec(b * t * i);
    let out = model.forward(&mut ws, &Input::new(t, b, &x)).unwrap();
    assert_eq!(out.y.len(), b * t * 2 * p);
    assert_eq!(out.h_n.len(), 2 * 2 * b * p);
    assert_eq!(out.c_n.len(), 2 * 2 * b * h);
    for seq in 0..b {
        /* index l·D + d; the last layer is l = 1 */
        let fwd = &out.h_n[(2 * b + seq) * p..(2 * b + seq + 1) * p];
        let rev = &out.h_n[(3 * b + seq) * p..(3 * b + seq + 1) * p];
        let y_last = &out.y[(seq * t + t - 1) * 2 * p..][..p];
        let y_first_rev = &out.y[(seq * t) * 2 * p + p..][..p];
        assert!(same_bits(fwd, y_last));
        assert!(same_bits(rev, y_first_rev));
    }
}

#[test]
fn lengths_pad_with_zeros_and_match_a_lone_sequence() {
    let (t, b, i, h) = (6, 3, 2, 4);
    let config = Config::new(i, h);
    let model = model(&config, 11);
    let mut ws = Workspace::new(&model).unwrap();
    let x = Rng::new(5).vec(t * b * i);
    let lengths = [6usize, 2, 4];
    let out = model
        .forward(&mut ws, &Input::new(t, b, &x).lengths(&lengths))
        .unwrap();
    for step in 2..t {
        assert!(out.y[(step * b + 1) * h..(step * b + 2) * h]
            .iter()
            .all(|&v| v == 0.0));
    }
    /* sequence 2 run alone for its 4 steps */
    let lone: Vec<f32> = (0..4)
        .flat_map(|s| x[(s * b + 2) * i..(s * b + 3) * i].to_vec())
        .collect();
    let alone = model.forward(&mut ws, &Input::new(4, 1, &lone)).unwrap();
    assert!(same_bits(&alone.h_n, &out.h_n[2 * h..3 * h]));
    let diff = (0..4)
        .flat_map(|s| {
            let a = alone.y[s * h..(s + 1) * h].to_vec();
            let p = out.y[(s * b + 2) * h..(s * b + 3) * h].to_vec();
            a.into_iter().zip(p)
        })
        .map(|(a, p)| (a - p).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff < 1e-6,
        "padded batch differs from a lone run by {}",
        diff
    );
}

#[test]
fn forward_into_writes_caller_buffers_and_skips_none() {
    let (t, b, i, h) = (3, 2, 2, 3);
    let model = model(&Config::new(i, h), 5);
    let mut ws = Workspace::new(&model).unwrap();
    let x = Rng::new(9).vec(t * b * i);
    let h0 = Rng::new(10).vec(b * h);
    let c0 = Rng::new(11).vec(b * h);
    let input = Input::new(t, b, &x).h0(&h0).c0(&c0);
    let full = model.forward(&mut ws, &input).unwrap();
    let mut h_n = vec![0.0; b * h];
    model
        .forward_into(
            &mut ws,
            &input,
            OutputBuffers {
                h_n: Some(&mut h_n),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(same_bits(&h_n, &full.h_n));
    let zero_state = model.forward(&mut ws, &Input::new(t, b, &x)).unwrap();
    assert!(!same_bits(&zero_state.h_n, &full.h_n));
}

#[test]
fn params_tensor_layout_and_init() {
    let (i, h, p) = (3, 4, 2);
    let mut m = Model::new(&Config::new(i, h).proj_size(p).peephole(true)).unwrap();
    assert!(m.params().iter().all(|&v| v == 0.0));
    m.init(42, true).unwrap();
    let (w_off, w_rows, w_cols) = m.tensor(0, 0, TensorKind::Weight).unwrap();
    assert_eq!((w_off, w_rows, w_cols), (0, 4 * h, p + i));
    let (b_off, b_rows, b_cols) = m.tensor(0, 0, TensorKind::Bias).unwrap();
    assert_eq!((b_off, b_rows, b_cols), (4 * h * (p + i), 4 * h, 1));
    let (_, pr_rows, pr_cols) = m.tensor(0, 0, TensorKind::Projection).unwrap();
    assert_eq!((pr_rows, pr_cols), (p, h));
    let (_, pe_rows, pe_cols) = m.tensor(0, 0, TensorKind::Peephole).unwrap();
    assert_eq!((pe_rows, pe_cols), (3, h));
    assert_eq!(m.param_count(), 4 * h * (p + i) + 4 * h + p * h + 3 * h);
    /* forget-gate biases are 1, the rest within 1/sqrt(H) */
    let bias = &m.params()[b_off..b_off + 4 * h];
    assert!(bias[h..2 * h].iter().all(|&v| v == 1.0));
    let bound = 1.0 / (h as f32).sqrt();
    assert!(m.params()[..b_off].iter().all(|v| v.abs() <= bound));
    /* same seed, same parameters */
    let mut again = Model::new(m.config()).unwrap();
    again.init(42, true).unwrap();
    assert!(same_bits(again.params(), m.params()));
    /* a tensor the model does not have */
    let err = m.tensor(1, 0, TensorKind::Weight).unwrap_err();
    assert_eq!(err.status, lstm::status::ARG);
    let plain = Model::new(&Config::new(i, h)).unwrap();
    assert_eq!(
        plain
            .tensor(0, 0, TensorKind::Projection)
            .unwrap_err()
            .status,
        lstm::status::ARG
    );
    /* get/set/try_clone */
    let mut copy = vec![0.0; m.param_count()];
    m.get_params(&mut copy).unwrap();
    assert!(same_bits(&copy, m.params()));
    let twin = m.try_clone().unwrap();
    assert!(same_bits(twin.params(), m.params()));
    copy[0] = 0.25;
    m.set_params(&copy).unwrap();
    assert_eq!(m.params()[0], 0.25);
    m.params_mut()[1] = 0.5;
    assert_eq!(m.params()[1], 0.5);
}

#[test]
fn workspace_size_and_reserve() {
    let model = model(&Config::new(8, 16), 1);
    let infer = model.workspace_size(lstm::Mode::Infer, 10, 4).unwrap();
    let train = model.workspace_size(lstm::Mode::Train, 10, 4).unwrap();
    assert!(infer > 0 && train > infer);
    let mut ws = Workspace::new(&model).unwrap();
    ws.reserve(lstm::Mode::Train, 10, 4).unwrap();
    ws.set_seed(3).unwrap();
}
