mod common;

use common::{model, same_bits, temp_path, Rng};
use lstm::status;
use lstm::{
    Config, Input, InputGrads, Model, OptimOptions, Optimizer, OutputBuffers, OutputGrads,
    ParamBuffer, State, Workspace,
};

const T: usize = 4;
const B: usize = 2;
const I: usize = 3;
const H: usize = 5;

fn setup() -> (Model, Workspace, Vec<f32>) {
    let m = model(&Config::new(I, H), 1);
    let ws = Workspace::new(&m).unwrap();
    (m, ws, Rng::new(2).vec(T * B * I))
}

#[test]
fn short_slices_are_refused_before_c_sees_them() {
    let (m, mut ws, x) = setup();
    let err = m
        .forward(&mut ws, &Input::new(T, B, &x[..x.len() - 1]))
        .unwrap_err();
    assert_eq!(err.status, status::SHAPE);
    assert!(err.message.contains("x has 23 values"), "{}", err.message);
    assert!(err.to_string().starts_with(err.text()));
    /* a batch larger than the data */
    assert_eq!(
        m.forward(&mut ws, &Input::new(T, B + 1, &x))
            .unwrap_err()
            .status,
        status::SHAPE
    );

    let mut y = vec![7.0; T * B * H - 1];
    let err = m
        .forward_into(
            &mut ws,
            &Input::new(T, B, &x),
            OutputBuffers {
                y: Some(&mut y),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.status, status::SHAPE);
    assert!(y.iter().all(|&v| v == 7.0));

    let h0 = vec![0.0; B * H + 1];
    assert_eq!(
        m.forward(&mut ws, &Input::new(T, B, &x).h0(&h0))
            .unwrap_err()
            .status,
        status::SHAPE
    );
    let c0 = vec![0.0; 1];
    assert_eq!(
        m.forward(&mut ws, &Input::new(T, B, &x).c0(&c0))
            .unwrap_err()
            .status,
        status::SHAPE
    );
    assert_eq!(
        m.forward(&mut ws, &Input::new(T, B, &x).lengths(&[T]))
            .unwrap_err()
            .status,
        status::SHAPE
    );
    assert_eq!(
        m.forward(&mut ws, &Input::new(T, B, &x).lengths(&[T, T + 1]))
            .unwrap_err()
            .status,
        status::ARG
    );
    let mut dst = vec![0.0; m.param_count() + 1];
    assert_eq!(m.get_params(&mut dst).unwrap_err().status, status::SHAPE);
}

#[test]
fn bad_configs_and_sizes() {
    let err = Model::new(&Config::new(3, 0)).unwrap_err();
    assert_eq!(err.status, status::SIZE);
    assert!(err.message.contains("hidden_size"), "{}", err.message);
    assert!(err.to_string().contains(err.text()));
    assert_eq!(
        Model::new(&Config::new(0, 3)).unwrap_err().status,
        status::SIZE
    );
    assert_eq!(
        Model::new(&Config::new(3, 4).proj_size(4))
            .unwrap_err()
            .status,
        status::SIZE
    );
    assert_eq!(
        Model::new(&Config::new(3, 4).dropout(1.0))
            .unwrap_err()
            .status,
        status::ARG
    );
    let (m, mut ws, _) = setup();
    assert_eq!(
        m.forward(&mut ws, &Input::new(0, B, &[]))
            .unwrap_err()
            .status,
        status::SIZE
    );
    let e: Box<dyn std::error::Error> = Box::new(Model::new(&Config::new(3, 0)).unwrap_err());
    assert!(!e.to_string().is_empty());
}

#[test]
fn nonfinite_values() {
    let (mut m, mut ws, mut x) = setup();
    x[5] = f32::NAN;
    let err = m.forward(&mut ws, &Input::new(T, B, &x)).unwrap_err();
    assert_eq!(err.status, status::NONFINITE);
    assert!(!err.message.is_empty());
    x[5] = f32::INFINITY;
    assert_eq!(
        m.forward_train(&mut ws, &Input::new(T, B, &x))
            .unwrap_err()
            .status,
        status::NONFINITE
    );

    let before = m.params().to_vec();
    let mut bad = before.clone();
    bad[0] = f32::NAN;
    assert_eq!(m.set_params(&bad).unwrap_err().status, status::NONFINITE);
    assert!(same_bits(&before, m.params()));
}

#[test]
fn backward_out_of_order_and_shapes() {
    let (mut m, mut ws, x) = setup();
    let dy = vec![0.1; T * B * H];
    assert_eq!(m.backward(&mut ws, &dy).unwrap_err().status, status::STATE);
    m.forward_train(&mut ws, &Input::new(T, B, &x)).unwrap();
    assert_eq!(
        m.backward(&mut ws, &dy[1..]).unwrap_err().status,
        status::SHAPE
    );
    let mut dx = vec![0.0; T * B * I + 2];
    let err = m
        .backward_into(
            &mut ws,
            &OutputGrads {
                dy: Some(&dy),
                ..Default::default()
            },
            InputGrads {
                dx: Some(&mut dx),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.status, status::SHAPE);
    /* still usable after refused calls */
    let mut dx = vec![0.0; T * B * I];
    let mut dh0 = vec![0.0; B * H];
    let dh_n = vec![0.2; B * H];
    m.backward_into(
        &mut ws,
        &OutputGrads {
            dy: Some(&dy),
            dh_n: Some(&dh_n),
            dc_n: None,
        },
        InputGrads {
            dx: Some(&mut dx),
            dh0: Some(&mut dh0),
            dc0: None,
        },
    )
    .unwrap();
    assert!(dx.iter().any(|&v| v != 0.0) && dh0.iter().any(|&v| v != 0.0));
    /* backward consumes the training forward */
    assert_eq!(m.backward(&mut ws, &dy).unwrap_err().status, status::STATE);
    /* inference discards it */
    m.forward_train(&mut ws, &Input::new(T, B, &x)).unwrap();
    m.forward(&mut ws, &Input::new(T, B, &x)).unwrap();
    assert_eq!(m.backward(&mut ws, &dy).unwrap_err().status, status::STATE);
    /* another model's training forward */
    let mut other = m.try_clone().unwrap();
    m.forward_train(&mut ws, &Input::new(T, B, &x)).unwrap();
    assert_eq!(
        other.backward(&mut ws, &dy).unwrap_err().status,
        status::STATE
    );
    m.backward(&mut ws, &dy).unwrap();
}

#[test]
fn mismatched_handles() {
    let (mut m, mut ws, x) = setup();
    /* a workspace of another configuration: C refuses it */
    let big = model(&Config::new(I, H + 1), 1);
    let mut big_ws = Workspace::new(&big).unwrap();
    assert_eq!(
        m.forward(&mut big_ws, &Input::new(T, B, &x))
            .unwrap_err()
            .status,
        status::SHAPE
    );
    /* a state of another configuration */
    let mut state = State::new(&big, B).unwrap();
    assert_eq!(state.run(&m, T, &x).unwrap_err().status, status::SHAPE);
    assert_eq!(
        state.step(&m, &x[..B * I]).unwrap_err().status,
        status::SHAPE
    );
    let mut state = State::new(&m, B).unwrap();
    assert_eq!(
        state.step(&m, &x[..B * I - 1]).unwrap_err().status,
        status::SHAPE
    );
    assert_eq!(
        state.set(Some(&[0.0; 3]), None).unwrap_err().status,
        status::SHAPE
    );
    /* bidirectional models cannot stream */
    let bi = model(&Config::new(I, H).bidirectional(true), 1);
    assert_eq!(State::new(&bi, B).unwrap_err().status, status::ARG);
    /* an optimizer stepped with an object it was not bound to */
    let mut opt = Optimizer::new(&OptimOptions::sgd(), &mut m).unwrap();
    let mut stranger = m.try_clone().unwrap();
    let before = stranger.params().to_vec();
    assert_eq!(opt.step(&mut stranger).unwrap_err().status, status::ARG);
    assert!(same_bits(&before, stranger.params()));
    let mut buffer = ParamBuffer::zeros(3);
    assert_eq!(opt.zero_grads(&mut buffer).unwrap_err().status, status::ARG);
    opt.step(&mut m).unwrap();
    /* the bound model dropped first: the optimizer can no longer step */
    drop(m);
    let mut fresh = model(&Config::new(I, H), 1);
    assert_eq!(opt.step(&mut fresh).unwrap_err().status, status::ARG);
    let _ = ws.reserve(lstm::Mode::Infer, 1, 1);
    /* bad options */
    assert_eq!(
        Optimizer::new(&OptimOptions::adam().lr(-1.0), &mut fresh)
            .unwrap_err()
            .status,
        status::ARG
    );
    assert_eq!(
        Optimizer::new(&OptimOptions::sgd().nesterov(true), &mut fresh)
            .unwrap_err()
            .status,
        status::ARG
    );
    assert_eq!(
        Optimizer::new(&OptimOptions::sgd(), &mut ParamBuffer::zeros(0))
            .unwrap_err()
            .status,
        status::SIZE
    );
}

#[test]
fn bad_files() {
    assert_eq!(
        Model::load_from_slice(b"not a model").unwrap_err().status,
        status::FORMAT
    );
    let m = model(&Config::new(I, H), 1);
    let mut bytes = m.save_to_vec().unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    assert_eq!(
        Model::load_from_slice(&bytes).unwrap_err().status,
        status::FORMAT
    );
    let truncated = &m.save_to_vec().unwrap()[..middle];
    assert_eq!(
        Model::load_from_slice(truncated).unwrap_err().status,
        status::FORMAT
    );
    let missing = temp_path("does-not-exist.lstm");
    assert_eq!(Model::load(&missing).unwrap_err().status, status::IO);
    assert_eq!(Model::load("bad\0path").unwrap_err().status, status::ARG);
    assert_eq!(
        m.save("/nonexistent-dir/x.lstm").unwrap_err().status,
        status::IO
    );
}
