mod common;

use common::{model, same_bits, Rng};
use lstm::{Config, Input, Model, OptimOptions, Optimizer, Outputs, State, Workspace};

/// The outputs of a workspace that packs the weights on every call.
fn plain(model: &Model, input: &Input<'_>) -> Outputs {
    let mut ws = Workspace::new(model).unwrap();
    model.forward(&mut ws, input).unwrap()
}

/// A forward on the kept workspace, checked bit for bit against plain().
fn kept_forward(model: &Model, ws: &mut Workspace, input: &Input<'_>) -> Vec<f32> {
    let kept = model.forward(ws, input).unwrap();
    let reference = plain(model, input);
    assert!(same_bits(&kept.y, &reference.y));
    assert!(same_bits(&kept.h_n, &reference.h_n));
    assert!(same_bits(&kept.c_n, &reference.c_n));
    kept.y
}

#[test]
fn workspace_keep_weights_gives_the_same_bits() {
    let (t, b, i, h) = (6, 4, 3, 8);
    for config in [
        Config::new(i, h).num_layers(2).proj_size(5),
        Config::new(i, h).bidirectional(true).peephole(true),
    ] {
        let mut model = model(&config, 21);
        let other = common::model(&config, 22);
        let mut rng = Rng::new(9);
        let x = rng.vec(t * b * i);
        let input = Input::new(t, b, &x);
        let mut ws = Workspace::new(&model).unwrap();
        ws.keep_weights(true).unwrap();
        let mut last = kept_forward(&model, &mut ws, &input);
        assert!(same_bits(&kept_forward(&model, &mut ws, &input), &last)); // reused
        kept_forward(&model, &mut ws, &Input::new(t, 2, &x[..t * 2 * i])); // another batch
        kept_forward(&model, &mut ws, &input);

        /* every way the crate changes parameters makes the kept weights follow */
        let mut check_changed = |model: &Model, ws: &mut Workspace| {
            let y = kept_forward(model, ws, &input);
            assert!(
                !same_bits(&y, &last),
                "the parameters did not change the output"
            );
            last = y;
        };
        model.set_params(other.params()).unwrap();
        check_changed(&model, &mut ws);
        model.params_mut()[0] += 0.5;
        check_changed(&model, &mut ws);
        for p in model.params_mut() {
            *p *= 0.75;
        }
        check_changed(&model, &mut ws);
        model.init(23, false).unwrap();
        check_changed(&model, &mut ws);
        let mut opt = Optimizer::new(&OptimOptions::sgd().lr(0.5), &mut model).unwrap();
        let out = model.forward_train(&mut ws, &input).unwrap();
        model.backward(&mut ws, &vec![1.0; out.y.len()]).unwrap();
        opt.step(&mut model).unwrap();
        check_changed(&model, &mut ws);

        ws.keep_weights(false).unwrap();
        assert!(same_bits(&kept_forward(&model, &mut ws, &input), &last));
    }
}

#[test]
fn state_keep_weights_gives_the_same_bits() {
    let (t, b, i, h) = (7, 2, 3, 6);
    let config = Config::new(i, h).num_layers(2).proj_size(4).peephole(true);
    let r = config.state_size();
    let mut model = model(&config, 31);
    let other = common::model(&config, 32);
    let x = Rng::new(10).vec(t * b * i);
    let whole = plain(&model, &Input::new(t, b, &x));
    let mut kept = State::new(&model, b).unwrap();
    kept.keep_weights(true).unwrap();
    let mut steps = State::new(&model, b).unwrap();
    for step in 0..t {
        let x_t = &x[step * b * i..(step + 1) * b * i];
        let y = kept.step(&model, x_t).unwrap();
        assert!(same_bits(&y, &steps.step(&model, x_t).unwrap()));
        assert!(same_bits(&y, &whole.y[step * b * r..(step + 1) * b * r]));
    }
    let (h_kept, c_kept) = kept.get().unwrap();
    let (h_plain, c_plain) = steps.get().unwrap();
    assert!(same_bits(&h_kept, &h_plain) && same_bits(&c_kept, &c_plain));

    /* parameters changed between steps */
    let x_0 = &x[..b * i];
    model.set_params(other.params()).unwrap();
    assert!(same_bits(
        &kept.step(&model, x_0).unwrap(),
        &steps.step(&model, x_0).unwrap()
    ));
    for p in model.params_mut() {
        *p *= -1.0;
    }
    assert!(same_bits(
        &kept.step(&model, x_0).unwrap(),
        &steps.step(&model, x_0).unwrap()
    ));

    /* chunks, and keep off again */
    kept.reset().unwrap();
    steps.reset().unwrap();
    let y = kept.run(&model, t, &x).unwrap();
    assert!(same_bits(&y, &steps.run(&model, t, &x).unwrap()));
    assert!(same_bits(&y, &plain(&model, &Input::new(t, b, &x)).y));
    kept.keep_weights(false).unwrap();
    assert!(same_bits(
        &kept.step(&model, x_0).unwrap(),
        &steps.step(&model, x_0).unwrap()
    ));
}
