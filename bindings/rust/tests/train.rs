mod common;

use common::{model, same_bits, Rng};
use lstm::{Config, Input, Model, OptimOptions, Optimizer, ParamBuffer, State, Workspace};

const T: usize = 12;
const B: usize = 16;
const H: usize = 8;

/// The echo task: the target at step t is half the input at step t - 1.
fn batch(rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let x: Vec<f32> = (0..T * B)
        .map(|_| if rng.uniform() < 0.0 { -1.0 } else { 1.0 })
        .collect();
    let mut target = vec![0.0; T * B];
    for t in 1..T {
        for b in 0..B {
            target[t * B + b] = 0.5 * x[(t - 1) * B + b];
        }
    }
    (x, target)
}

/// One training step of LSTM + linear head; returns the loss before the step.
fn train_step(
    model: &mut Model,
    head: &mut ParamBuffer,
    ws: &mut Workspace,
    opt: &mut Optimizer,
    head_opt: &mut Optimizer,
    x: &[f32],
    target: &[f32],
) -> f32 {
    opt.zero_grads(model).unwrap();
    head.zero_grads();
    let out = model.forward_train(ws, &Input::new(T, B, x)).unwrap();
    let n = (T * B) as f32;
    let mut loss = 0.0;
    let mut dy = vec![0.0; T * B * H];
    {
        let (w, grads) = head.params_and_grads_mut();
        for row in 0..T * B {
            let h = &out.y[row * H..(row + 1) * H];
            let pred: f32 = h.iter().zip(&w[..H]).map(|(a, b)| a * b).sum::<f32>() + w[H];
            let err = pred - target[row];
            loss += err * err / n;
            let g = 2.0 * err / n;
            for j in 0..H {
                grads[j] += g * h[j];
                dy[row * H + j] = g * w[j];
            }
            grads[H] += g;
        }
    }
    model.backward(ws, &dy).unwrap();
    opt.clip_grad_norm(model, 5.0).unwrap();
    opt.step(model).unwrap();
    head_opt.step(head).unwrap();
    loss
}

#[test]
fn adam_lowers_the_loss_on_an_echo_task() {
    let mut model = model(&Config::new(1, H), 1);
    let mut rng = Rng::new(2);
    let mut head = ParamBuffer::new(rng.vec(H + 1).iter().map(|v| v * 0.3).collect());
    let mut ws = Workspace::new(&model).unwrap();
    let mut opt = Optimizer::new(&OptimOptions::adam().lr(0.02), &mut model).unwrap();
    let mut head_opt = Optimizer::new(&OptimOptions::adam().lr(0.02), &mut head).unwrap();
    assert_eq!(opt.param_count(), model.param_count());
    assert_eq!(head_opt.param_count(), H + 1);

    let (x0, z0) = batch(&mut Rng::new(99));
    let first = train_step(
        &mut model,
        &mut head,
        &mut ws,
        &mut opt,
        &mut head_opt,
        &x0,
        &z0,
    );
    let mut last = first;
    for _ in 0..300 {
        let (x, z) = batch(&mut rng);
        last = train_step(
            &mut model,
            &mut head,
            &mut ws,
            &mut opt,
            &mut head_opt,
            &x,
            &z,
        );
    }
    assert_eq!(opt.step_count(), 301);
    println!("echo task: loss {:.5} -> {:.5}", first, last);
    assert!(last < 0.1 * first, "loss went from {} to {}", first, last);
}

#[test]
fn every_optimizer_kind_steps() {
    for options in [
        OptimOptions::sgd().lr(0.1).momentum(0.9).nesterov(true),
        OptimOptions::adagrad(),
        OptimOptions::rmsprop().centered(true).momentum(0.5),
        OptimOptions::adam().amsgrad(true),
        OptimOptions::adamw().weight_decay(0.1),
    ] {
        let mut buffer = ParamBuffer::new(vec![1.0, -2.0, 3.0]);
        buffer.grads_mut().copy_from_slice(&[0.5, -0.5, 1.0]);
        let mut opt = Optimizer::new(&options, &mut buffer).unwrap();
        opt.step(&mut buffer).unwrap();
        assert_eq!(opt.step_count(), 1);
        assert!(
            buffer.params()[0] < 1.0,
            "{:?} did not descend",
            options.kind
        );
        opt.set_lr(0.5).unwrap();
        assert_eq!(opt.lr(), 0.5);
        opt.zero_grads(&mut buffer).unwrap();
        assert!(buffer.grads().iter().all(|&g| g == 0.0));
    }
    assert_eq!(lstm::schedule::step(1.0, 0.5, 2, 5).unwrap(), 0.25);
    assert!((lstm::schedule::cosine(1.0, 0.0, 10, 10).unwrap()).abs() < 1e-12);
}

#[test]
fn clipping_and_nonfinite_gradients() {
    let mut buffer = ParamBuffer::new(vec![0.0; 4]);
    buffer.grads_mut().copy_from_slice(&[3.0, 4.0, 0.0, 0.0]);
    let mut opt = Optimizer::new(&OptimOptions::sgd(), &mut buffer).unwrap();
    let norm = opt.clip_grad_norm(&mut buffer, 1.0).unwrap();
    assert!((norm - 5.0).abs() < 1e-6);
    assert!((buffer.grads()[0] - 0.6).abs() < 1e-5);
    opt.clip_grad_value(&mut buffer, 0.1).unwrap();
    assert!(buffer.grads().iter().all(|g| g.abs() <= 0.1));
    buffer.grads_mut()[2] = f32::NAN;
    let before = buffer.params().to_vec();
    let err = opt.step(&mut buffer).unwrap_err();
    assert_eq!(err.status, lstm::status::NONFINITE);
    assert!(same_bits(&before, buffer.params()));
    assert_eq!(opt.step_count(), 0);
}

#[test]
fn truncated_bptt_chunks_match_streaming_and_give_gradients() {
    let (steps, b, i, h) = (5, 2, 3, 4);
    let mut model = model(&Config::new(i, h).num_layers(2), 8);
    let mut ws = Workspace::new(&model).unwrap();
    let mut train_state = State::new(&model, b).unwrap();
    let mut infer_state = State::new(&model, b).unwrap();
    let mut rng = Rng::new(4);
    for _chunk in 0..3 {
        let x = rng.vec(steps * b * i);
        let mut y = vec![0.0; steps * b * h];
        model
            .forward_train_chunk(&mut ws, &mut train_state, steps, &x, Some(&mut y))
            .unwrap();
        let expected = infer_state.run(&model, steps, &x).unwrap();
        assert!(same_bits(&y, &expected));
        model.zero_grads().unwrap();
        model.backward(&mut ws, &vec![1.0; steps * b * h]).unwrap();
        assert!(model.grads().iter().any(|&g| g != 0.0));
    }
}
