mod common;

use common::{model, same_bits, Rng};
use lstm::{Config, Input, Model, Optimizer, ParamBuffer, State, Workspace};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

#[test]
fn thread_markers() {
    assert_send::<Model>();
    assert_sync::<Model>();
    assert_send::<Workspace>();
    assert_send::<State>();
    assert_send::<Optimizer>();
    assert_send::<ParamBuffer>();
    assert_sync::<ParamBuffer>();
    assert_send::<lstm::Error>();
    assert_sync::<lstm::Error>();
    /* Workspace, State and Optimizer are not Sync: see the compile_fail
     * doctests at the crate root. */
}

#[test]
fn shared_model_read_only_forward_from_many_threads() {
    let (t, b, i, h) = (20, 4, 8, 32);
    let model = model(&Config::new(i, h).num_layers(2), 17);
    let inputs: Vec<Vec<f32>> = (0..4).map(|k| Rng::new(100 + k).vec(t * b * i)).collect();
    let mut ws = Workspace::new(&model).unwrap();
    let expected: Vec<_> = inputs
        .iter()
        .map(|x| model.forward(&mut ws, &Input::new(t, b, x)).unwrap())
        .collect();
    let model = &model;
    let expected = &expected;
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let inputs = &inputs;
            scope.spawn(move || {
                let mut ws = Workspace::new(model).unwrap();
                let mut state = State::new(model, b).unwrap();
                for round in 0..10 {
                    let k = (worker + round) % inputs.len();
                    let out = model
                        .forward(&mut ws, &Input::new(t, b, &inputs[k]))
                        .unwrap();
                    assert!(
                        same_bits(&out.y, &expected[k].y),
                        "thread {} round {}",
                        worker,
                        round
                    );
                    assert!(same_bits(&out.h_n, &expected[k].h_n));
                    state.reset().unwrap();
                    let y = state.run(model, t, &inputs[k]).unwrap();
                    assert!(same_bits(&y, &expected[k].y));
                }
            });
        }
    });
}

#[test]
fn workspace_and_model_move_to_another_thread() {
    let mut model = model(&Config::new(2, 3), 1);
    let ws = Workspace::new(&model).unwrap();
    let x = vec![0.5; 2 * 2];
    let handle = std::thread::spawn(move || {
        let mut ws = ws;
        let out = model.forward_train(&mut ws, &Input::new(2, 1, &x)).unwrap();
        model.backward(&mut ws, &out.y).unwrap();
        model
    });
    let model = handle.join().unwrap();
    assert!(model.grads().iter().any(|&g| g != 0.0));
}
