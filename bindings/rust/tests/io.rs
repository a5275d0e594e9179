mod common;

use common::{model, same_bits, temp_path, Rng};
use lstm::{Config, Input, Model, OptimOptions, Optimizer, Workspace};

#[test]
fn save_and_load_round_trip() {
    let config = Config::new(3, 6)
        .num_layers(2)
        .bidirectional(true)
        .proj_size(4)
        .batch_first(true);
    let original = model(&config, 21);
    let path = temp_path("round-trip.lstm");
    original.save(&path).unwrap();
    let from_file = Model::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let bytes = original.save_to_vec().unwrap();
    let from_bytes = Model::load_from_slice(&bytes).unwrap();

    let (t, b) = (4, 3);
    let x = Rng::new(1).vec(t * b * 3);
    let mut ws = Workspace::new(&original).unwrap();
    let expected = original.forward(&mut ws, &Input::new(t, b, &x)).unwrap();
    for loaded in [&from_file, &from_bytes] {
        assert_eq!(loaded.config(), original.config());
        assert!(same_bits(loaded.params(), original.params()));
        /* the original's workspace serves a model of the same configuration */
        let out = loaded.forward(&mut ws, &Input::new(t, b, &x)).unwrap();
        assert_eq!(out, expected);
    }
}

#[test]
fn optimizer_state_round_trip_resumes_bit_for_bit() {
    let (t, b, i, h) = (6, 2, 2, 5);
    let mut rng = Rng::new(3);
    let batches: Vec<Vec<f32>> = (0..6).map(|_| rng.vec(t * b * i)).collect();
    let step = |m: &mut Model, ws: &mut Workspace, opt: &mut Optimizer, x: &[f32]| {
        opt.zero_grads(m).unwrap();
        let out = m.forward_train(ws, &Input::new(t, b, x)).unwrap();
        m.backward(ws, &out.y).unwrap(); /* the loss sum(y^2)/2 */
        opt.step(m).unwrap();
    };

    let mut a = model(&Config::new(i, h), 5);
    let mut ws = Workspace::new(&a).unwrap();
    let mut opt_a = Optimizer::new(&OptimOptions::adam().lr(0.05), &mut a).unwrap();
    for x in &batches[..3] {
        step(&mut a, &mut ws, &mut opt_a, x);
    }
    let path = temp_path("with-optim.lstm");
    a.save_with_optimizer(&opt_a, &path).unwrap();
    let bytes = a.save_to_vec_with_optimizer(&opt_a).unwrap();
    let flat = opt_a.save_state().unwrap();
    for x in &batches[3..] {
        step(&mut a, &mut ws, &mut opt_a, x);
    }

    for source in 0..3 {
        let mut resumed = match source {
            0 => Model::load(&path).unwrap(),
            _ => Model::load_from_slice(&bytes).unwrap(),
        };
        let mut opt = Optimizer::new(&OptimOptions::adam().lr(0.05), &mut resumed).unwrap();
        match source {
            0 => opt.load_from_model_file(&path).unwrap(),
            1 => opt.load_from_model_slice(&bytes).unwrap(),
            _ => opt.load_state(&flat).unwrap(),
        }
        assert_eq!(opt.step_count(), 3);
        for x in &batches[3..] {
            step(&mut resumed, &mut ws, &mut opt, x);
        }
        assert!(same_bits(resumed.params(), a.params()), "source {}", source);
    }
    std::fs::remove_file(&path).unwrap();

    /* a file without optimizer state */
    let mut plain = Model::load_from_slice(&a.save_to_vec().unwrap()).unwrap();
    let mut opt = Optimizer::new(&OptimOptions::adam(), &mut plain).unwrap();
    let err = opt
        .load_from_model_slice(&plain.save_to_vec().unwrap())
        .unwrap_err();
    assert_eq!(err.status, lstm::status::FORMAT);
}
